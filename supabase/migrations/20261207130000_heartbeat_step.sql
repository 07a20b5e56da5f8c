-- liveparams: the job row holds the trainer's step as of its last report (issue 23, the panel's list).
--
-- trainer_step is the global step the trainer reported last: at attach (0, or the checkpoint's
-- step on a resume), with every heartbeat, while paused, and on the way out. The panel's jobs list
-- shows it from the Realtime payload of the row's UPDATE that a heartbeat makes anyway, where it
-- read each job's last metrics point again on every heartbeat (~2 REST calls a second for one tab
-- listing 50 attached trainers).
--
-- No new argument: record_trainer_state already takes p_step with every state (the pause step,
-- the detach step; an `alive` beat's was ignored), so the agent sends its step with each beat.
-- The function's signature and return value stay, and an agent's call is the same against a
-- database with or without this migration (where `alive` ignores the step, as before). A caller
-- that sends no step (an older agent, the CLI, SQL) leaves the last reported one, except at
-- attach, which starts a new run: there a missing step clears the previous run's.
--
-- The column is written by the one UPDATE a beat already makes (liveparams_record_trainer_state_row,
-- redefined here with its body and signature otherwise unchanged): a second UPDATE would be a second
-- Realtime change, sent to every listener, on every beat.

alter table public.local_training_jobs add column if not exists trainer_step integer;

comment on column public.local_training_jobs.trainer_step is
  'The trainer''s global step at its last report (attach, heartbeat, pause, detach); null until a trainer that '
  'reports it attaches. It lags training by up to one heartbeat (AgentConfig.heartbeat_interval).';

create or replace function public.liveparams_record_trainer_state_row(
  p_job_id uuid,
  p_state text,
  p_step integer default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
begin
  if not v_is_service and public.liveparams_trainer_job_id() is distinct from p_job_id then
    raise exception 'this token may not report the trainer of training job % (not its trainer credential, or revoked)',
      p_job_id using errcode = '42501';
  end if;
  if p_state is null or p_state not in ('attached', 'alive', 'completed', 'stopped', 'crashed', 'closed') then
    raise exception 'trainer state must be attached, alive, completed, stopped, crashed or closed, got %', p_state
      using errcode = '22023';
  end if;
  update public.local_training_jobs
     set trainer_attached_at = case when p_state = 'attached' then now() else trainer_attached_at end,
         trainer_seen_at = now(),
         trainer_detached_at = case when p_state in ('attached', 'alive') then null else now() end,
         trainer_detach_reason = case when p_state in ('attached', 'alive') then null else p_state end,
         trainer_detach_step = case when p_state in ('attached', 'alive') then null else p_step end,
         trainer_step = case when p_state = 'attached' then p_step else coalesce(p_step, trainer_step) end
   where id = p_job_id
     and (p_state <> 'alive' or trainer_detached_at is null);
  if not found and not exists (select 1 from public.local_training_jobs where id = p_job_id) then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
end;
$$;

-- `create or replace` keeps the function's privileges; said again so that this file alone is true.
revoke all on function public.liveparams_record_trainer_state_row(uuid, text, integer)
  from public, anon, authenticated, service_role;

comment on function public.record_trainer_state(uuid, text, integer) is
  'The trainer''s attachment (attached, alive, paused, or how it detached) and its step (p_step: the step it is '
  'at, which trainer_step keeps; the pause or detach step); returns the seq of the job''s newest request (0: none), '
  'so that an agent knows whether push missed one.';
