-- per_device_train_batch_size and gradient_accumulation_steps are no longer restart-only: the
-- trainer applies them by an in-process restart (docs/parameters.md). Only the parameter spec
-- changes; request_parameter_update reads it through this function, so the keys are accepted
-- with these bounds at once. `command` gains "rewind", with an optional `checkpoint` (a step), and
-- "pause" and "resume" (20261207020000_pause_resume.sql holds the rest of the pause).
-- The spec must equal liveparams.contract.PARAMETERS (tests/test_docs.py).
create or replace function public.liveparams_parameter_spec()
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select '{
    "learning_rate":   {"type": "number",  "min": 0, "min_exclusive": true, "max": 1},
    "learning_rate_mode": {"type": "string", "choices": ["rescale", "constant"]},
    "weight_decay":    {"type": "number",  "min": 0, "max": 10},
    "adam_beta1":      {"type": "number",  "min": 0, "max": 0.999999},
    "adam_beta2":      {"type": "number",  "min": 0, "max": 0.999999},
    "adam_epsilon":    {"type": "number",  "min": 0, "min_exclusive": true, "max": 1},
    "max_grad_norm":   {"type": "number",  "min": 0, "max": 1000000},
    "warmup_steps":    {"type": "integer", "min": 0, "max": 100000000},
    "max_steps":       {"type": "integer", "min": 1, "max": 100000000},
    "logging_steps":   {"type": "integer", "min": 1, "max": 100000000},
    "eval_steps":      {"type": "integer", "min": 1, "max": 100000000},
    "save_steps":      {"type": "integer", "min": 1, "max": 100000000},
    "beta":            {"type": "number",  "min": 0, "max": 1000},
    "command":         {"type": "string",  "choices": ["save_checkpoint", "evaluate", "stop", "pause", "resume", "rewind"]},
    "checkpoint":      {"type": "integer", "min": 1, "max": 100000000},
    "per_device_train_batch_size": {"type": "integer", "min": 1, "max": 100000000},
    "gradient_accumulation_steps": {"type": "integer", "min": 1, "max": 100000000},
    "num_generations": {"type": "integer", "restart_only": true},
    "max_completion_length": {"type": "integer", "restart_only": true}
  }'::jsonb
$$;

grant execute on function public.liveparams_parameter_spec() to anon, authenticated, service_role;
