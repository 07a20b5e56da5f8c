-- liveparams: the job row shows the last in-process restart or rewind, and how long it took; and
-- GRPO/RLOO's max_completion_length and num_generations are no longer restart-only (the parameter spec,
-- at the end).
--
-- A restart-only setting (per_device_train_batch_size, gradient_accumulation_steps) is applied by
-- saving, leaving the loop and entering train() again in the same process; `command=rewind` takes
-- the same road from an earlier checkpoint. Once the first step after it begins, the trainer's agent
-- records it here (record_trainer_restart, sent with its heartbeat): the kind, the step the run went
-- on from (a rewind's: also the step it left), the settings it went on with, and the wall time
-- measured from the request's apply to that first step. Only the last one is kept: each replaces
-- the one before, and it stays on the row after the trainer detached (it is what happened to the job).

alter table public.local_training_jobs
  add column if not exists trainer_restart_kind text,
  add column if not exists trainer_restart_step integer,
  add column if not exists trainer_restart_from_step integer,
  add column if not exists trainer_restart_settings jsonb,
  add column if not exists trainer_restart_seconds double precision,
  add column if not exists trainer_restarted_at timestamptz;

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'local_training_jobs_trainer_restart_kind_check') then
    alter table public.local_training_jobs
      add constraint local_training_jobs_trainer_restart_kind_check
      check (trainer_restart_kind in ('restart', 'rewind'));
  end if;
end;
$$;

comment on column public.local_training_jobs.trainer_restart_kind is
  'The last in-process restart: restart (a restart-only setting) or rewind (command=rewind); null before any.';
comment on column public.local_training_jobs.trainer_restart_step is 'The global step the run went on from.';
comment on column public.local_training_jobs.trainer_restart_from_step is 'A rewind''s: the step it left.';
comment on column public.local_training_jobs.trainer_restart_settings is
  'The restart-only settings the run went on with, {name: value}.';
comment on column public.local_training_jobs.trainer_restart_seconds is
  'Wall time, measured by the trainer, from the request''s apply (the save) to the first step after re-entering train().';
comment on column public.local_training_jobs.trainer_restarted_at is 'When it was recorded (that first step).';

create or replace function public.record_trainer_restart(
  p_job_id uuid,
  p_kind text,
  p_step integer,
  p_from_step integer default null,
  p_settings jsonb default '{}'::jsonb,
  p_seconds double precision default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if coalesce(auth.role(), '') <> 'service_role' and public.liveparams_trainer_job_id() is distinct from p_job_id then
    raise exception 'this token may not report the trainer of training job % (not its trainer credential, or revoked)',
      p_job_id using errcode = '42501';
  end if;
  if p_kind is null or p_kind not in ('restart', 'rewind') then
    raise exception 'restart kind must be restart or rewind, got %', p_kind using errcode = '22023';
  end if;
  if p_step is null or p_step < 0 or p_from_step < p_step then
    raise exception 'restart step must be >= 0 (and a rewind''s from_step >= it), got % from %', p_step, p_from_step
      using errcode = '22023';
  end if;
  if p_seconds is null or p_seconds < 0 or p_seconds = 'Infinity'::double precision or p_seconds = 'NaN' then
    raise exception 'restart seconds must be a finite number >= 0, got %', p_seconds using errcode = '22023';
  end if;
  if jsonb_typeof(coalesce(p_settings, '{}'::jsonb)) <> 'object' then
    raise exception 'restart settings must be a JSON object, got %', p_settings using errcode = '22023';
  end if;
  update public.local_training_jobs
     set trainer_restart_kind = p_kind,
         trainer_restart_step = p_step,
         trainer_restart_from_step = p_from_step,
         trainer_restart_settings = coalesce(p_settings, '{}'::jsonb),
         trainer_restart_seconds = p_seconds,
         trainer_restarted_at = now()
   where id = p_job_id;
  if not found then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
end;
$$;

revoke all on function public.record_trainer_restart(uuid, text, integer, integer, jsonb, double precision)
  from public, anon;
grant execute on function public.record_trainer_restart(uuid, text, integer, integer, jsonb, double precision)
  to authenticated, service_role;

-- max_completion_length and num_generations are applied by an in-process restart too
-- (docs/parameters.md): the spec of 20261207030000_restart_settings.sql with their bounds.
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
    "num_generations": {"type": "integer", "min": 2, "max": 100000000},
    "max_completion_length": {"type": "integer", "min": 1, "max": 100000000}
  }'::jsonb
$$;

grant execute on function public.liveparams_parameter_spec() to anon, authenticated, service_role;
