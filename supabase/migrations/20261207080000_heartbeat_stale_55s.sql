-- liveparams: a trainer's heartbeat stays fresh for 55 s (issue 23, an idle agent's cost).
--
-- The agent now beats every 25 s (AgentConfig.heartbeat_interval, was 10 s), which cuts what an
-- idle attached trainer pays for it by 60%. A row is stale after two beats plus 5 s, 55 s, where it
-- was three beats of 10 s, 30 s: a beat that lands up to 30 s late (the agent retries a failed one
-- after 0.5 s, then at doubling gaps) never makes a live trainer look gone, and a trainer whose
-- machine vanished reads as gone within 55 s (issue 19: not attached for over a minute). liveparams._views.HEARTBEAT_STALE_S is the
-- same rule in Python; tests/test_runs.py reads this function and checks that they agree. Callers
-- (end_training_run, the CLI, the panel) read the bound from here, so nothing else changes.

create or replace function public.liveparams_trainer_stale_seconds()
returns integer
language sql
immutable
set search_path = ''
as $$ select 55 $$;
