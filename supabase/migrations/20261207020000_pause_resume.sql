-- liveparams: `command=pause` and `command=resume`.
--
-- 1. The parameter spec gains the two commands: 20261207030000_restart_settings.sql, which
--    redefines the spec once for this release's commands and keys.
-- 2. The job row says when the attached trainer is paused, and at which step: the agent's heartbeat
--    records `paused` (with the step) instead of `alive` while training holds, and at once when the
--    hold begins or ends. `alive`, `attached` and every way of detaching clear it, so a row never
--    shows a pause the trainer is not in. A paused trainer keeps its heartbeat: it is attached.
--
-- Redefines record_trainer_state (the wrapper of 20261206110000_request_runs.sql, same body plus
-- the pause columns).

alter table public.local_training_jobs
  add column if not exists trainer_paused_at timestamptz,
  add column if not exists trainer_pause_step integer;

comment on column public.local_training_jobs.trainer_paused_at is
  'Since when the attached trainer holds (command=pause); null while it trains, and once it detached.';
comment on column public.local_training_jobs.trainer_pause_step is 'The global step the paused trainer holds at.';

create or replace function public.record_trainer_state(p_job_id uuid, p_state text, p_step integer default null)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Who may, and the row (`interrupted` is recorded as `closed`, then named; `paused` is a heartbeat).
  perform public.liveparams_record_trainer_state_row(
    p_job_id, case p_state when 'interrupted' then 'closed' when 'paused' then 'alive' else p_state end, p_step);
  if p_state = 'paused' then
    update public.local_training_jobs
       set trainer_paused_at = case when trainer_pause_step is not distinct from p_step
                                    then coalesce(trainer_paused_at, now()) else now() end,
           trainer_pause_step = p_step
     where id = p_job_id and trainer_detached_at is null;
    return;
  end if;
  update public.local_training_jobs set trainer_paused_at = null, trainer_pause_step = null
   where id = p_job_id and trainer_paused_at is not null;
  if p_state = 'interrupted' then
    update public.local_training_jobs set trainer_detach_reason = 'interrupted' where id = p_job_id;
  elsif p_state = 'attached' then
    update public.local_training_jobs
       set run_ended_at = null, run_end_step = null, run_end_reason = null
     where id = p_job_id and run_ended_at is not null;
  elsif p_state in ('completed', 'stopped') then
    perform public.liveparams_end_run(p_job_id, p_step, p_state);
  end if;
end;
$$;

revoke all on function public.record_trainer_state(uuid, text, integer) from public, anon;
grant execute on function public.record_trainer_state(uuid, text, integer) to authenticated, service_role;
