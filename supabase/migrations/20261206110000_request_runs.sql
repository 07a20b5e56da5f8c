-- liveparams: requests belong to a run.
--
-- A run is one training of a job, from the moment its trainer attaches to the moment it ends.
-- It ends when train() returns (the trainer records `completed`, or `stopped` when a stop request
-- ended it) or when the owner ends it (end_training_run). At the end every request still
-- undecided gets a final outcome, `cancelled` with the reason "not applied: the run ended at
-- step N", so nothing waits for ever and nothing carries over to a later run. Until a trainer
-- attaches again (which opens the job's next run) request_parameter_update refuses new
-- requests with that reason.
--
-- A crash is not an end: a trainer that crashed (`crashed`), was killed (no detach at all) or
-- closed without saying why (`closed`) leaves its requests undecided, and the run resumed
-- after it still gets them.
--
-- Also here:
--   * cancel_parameter_update: the owner cancels one undecided request (status `cancelled`).
--   * A trainer's outcome replaces a `cancelled` one: when the trainer had taken the request
--     before it was cancelled (or before the run-end marking), the row says what it really did.
--   * An `applied` outcome at an earlier step replaces the step of one already `applied`: after
--     a resume from a checkpoint the trainer applies again what the checkpoint rewound, and the
--     row shows the step it is in force from now.
--
-- Redefines record_trainer_state and request_parameter_update by wrapping the previous ones
-- (renamed liveparams_record_trainer_state_row and liveparams_request_parameter_update_checked),
-- and liveparams_store_outcome.

alter table public.local_training_jobs
  add column if not exists run_ended_at timestamptz,
  add column if not exists run_end_step integer,
  add column if not exists run_end_reason text;

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'local_training_jobs_run_end_reason_check') then
    alter table public.local_training_jobs
      add constraint local_training_jobs_run_end_reason_check
      check (run_end_reason in ('completed', 'stopped', 'ended by its owner'));
  end if;
end;
$$;

-- Ctrl-C (KeyboardInterrupt out of train()) is told apart from a crash: `interrupted`, at its step.
alter table public.local_training_jobs drop constraint if exists local_training_jobs_trainer_detach_reason_check;
alter table public.local_training_jobs add constraint local_training_jobs_trainer_detach_reason_check
  check (trainer_detach_reason in ('completed', 'stopped', 'crashed', 'interrupted', 'closed'));

comment on column public.local_training_jobs.run_ended_at is
  'When the job''s current run ended (train() returned, a stop applied, or the owner ended it); null while a run '
  'is open or none has started. Requests are refused until a trainer attaches again, which opens the next run.';
comment on column public.local_training_jobs.run_end_step is 'The global step the run ended at, when known.';
comment on column public.local_training_jobs.run_end_reason is 'completed, stopped, or ended by its owner.';

alter table public.parameter_update_requests drop constraint if exists parameter_update_requests_status_check;
alter table public.parameter_update_requests add constraint parameter_update_requests_status_check
  check (status in ('applied', 'rejected', 'superseded', 'failed', 'cancelled'));
comment on column public.parameter_update_requests.status is
  'null while undecided; then applied, rejected, superseded or failed (by the trainer), or cancelled (by the owner, '
  'or because the run ended). A trainer''s outcome replaces cancelled; otherwise the first outcome recorded wins.';

-- How long a trainer's heartbeat stays fresh (seconds): three of the agent's heartbeats
-- (AgentConfig.heartbeat_interval); tests/stack/test_runs.py checks the two agree.
create or replace function public.liveparams_trainer_stale_seconds()
returns integer
language sql
immutable
set search_path = ''
as $$ select 30 $$;

-- Ends the job's run at p_step: the job row says so, and every undecided request gets its final
-- outcome. The job row is updated first, so a concurrent request_parameter_update (which locks
-- that row) either commits before and is cancelled here, or waits and is refused.
create or replace function public.liveparams_end_run(p_job_id uuid, p_step integer, p_reason text)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_cancelled integer;
begin
  update public.local_training_jobs
     set run_ended_at = now(), run_end_step = p_step, run_end_reason = p_reason
   where id = p_job_id;
  update public.parameter_update_requests
     set status = 'cancelled',
         step = p_step,
         reason = case when p_step is null then 'not applied: the run ended'
                       else format('not applied: the run ended at step %s', p_step) end,
         decided_at = now()
   where job_id = p_job_id and status is null;
  get diagnostics v_cancelled = row_count;
  return v_cancelled;
end;
$$;

-- The trainer's attachment, as before, plus the run: `attached` opens a new run when the last
-- one ended; `completed` and `stopped` end it (after the agent flushed its outcomes);
-- `interrupted` (Ctrl-C) detaches like `crashed`, without ending the run.
alter function public.record_trainer_state(uuid, text, integer) rename to liveparams_record_trainer_state_row;
revoke all on function public.liveparams_record_trainer_state_row(uuid, text, integer)
  from public, anon, authenticated, service_role;

create function public.record_trainer_state(p_job_id uuid, p_state text, p_step integer default null)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Who may, and the row (`interrupted` is recorded as `closed`, then named).
  perform public.liveparams_record_trainer_state_row(
    p_job_id, case when p_state = 'interrupted' then 'closed' else p_state end, p_step);
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

-- Requests: refused while the job's last run has ended and no trainer attached since.
alter function public.request_parameter_update(uuid, jsonb, uuid) rename to liveparams_request_parameter_update_checked;
revoke all on function public.liveparams_request_parameter_update_checked(uuid, jsonb, uuid)
  from public, anon, authenticated, service_role;

create function public.request_parameter_update(p_job_id uuid, p_params jsonb, p_request_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.local_training_jobs%rowtype;
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
begin
  -- The same lock the checked function takes: a run cannot end between this check and the insert.
  select * into v_job from public.local_training_jobs where id = p_job_id for update;
  if found and v_job.run_ended_at is not null and (v_is_service or coalesce(v_job.user_id = auth.uid(), false))
     and not (p_request_id is not null and exists (
       select 1 from public.parameter_update_requests where job_id = p_job_id and id = p_request_id::text)) then
    raise exception 'the run of training job % ended%; no trainer will apply this request (a new run starts when a trainer attaches)',
      p_job_id,
      case when v_job.run_end_step is null then format(' (%s)', v_job.run_end_reason)
           else format(' at step %s (%s)', v_job.run_end_step, v_job.run_end_reason) end
      using errcode = 'PT409';
  end if;
  return public.liveparams_request_parameter_update_checked(p_job_id, p_params, p_request_id);
end;
$$;

-- The job, locked, when the caller is its owner or service_role; else "not found" (PT404), which
-- does not say whether it exists. The owner's RPCs below start with it.
create or replace function public.liveparams_lock_owned_job(p_job_id uuid)
returns public.local_training_jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.local_training_jobs%rowtype;
begin
  select * into v_job from public.local_training_jobs where id = p_job_id for update;
  if not found or not (coalesce(auth.role(), '') = 'service_role' or coalesce(v_job.user_id = auth.uid(), false)) then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
  return v_job;
end;
$$;

-- The owner (or service_role) cancels one undecided request, by its seq on the job.
create or replace function public.cancel_parameter_update(p_job_id uuid, p_seq bigint)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row public.parameter_update_requests%rowtype;
begin
  perform public.liveparams_lock_owned_job(p_job_id);
  select * into v_row from public.parameter_update_requests where job_id = p_job_id and seq = p_seq;
  if not found then
    raise exception 'training job % has no request #%', p_job_id, p_seq using errcode = 'PT404';
  end if;
  if v_row.status is not null then
    raise exception 'request #% of training job % is already %; only a pending request can be cancelled',
      p_seq, p_job_id, v_row.status using errcode = 'PT409';
  end if;
  update public.parameter_update_requests
     set status = 'cancelled', reason = 'cancelled by its owner', decided_at = now()
   where job_id = p_job_id and seq = p_seq
  returning * into v_row;
  return to_jsonb(v_row) - 'job_id';
end;
$$;

-- The owner (or service_role) ends the job's run: its undecided requests get their final outcome,
-- and new ones are refused until a trainer attaches again. Refused while a trainer is attached
-- (its heartbeat is fresh): that run ends with `command=stop`, which the trainer applies.
create or replace function public.end_training_run(p_job_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.local_training_jobs%rowtype := public.liveparams_lock_owned_job(p_job_id);
  v_step integer;
  v_cancelled integer;
begin
  if v_job.trainer_attached_at is not null and v_job.trainer_detached_at is null
     and v_job.trainer_seen_at > now() - make_interval(secs => public.liveparams_trainer_stale_seconds()) then
    raise exception 'a trainer is attached to training job %; end its run with `command=stop` instead', p_job_id
      using errcode = 'PT409';
  end if;
  v_step := case when v_job.run_ended_at is not null then v_job.run_end_step else v_job.trainer_detach_step end;
  v_cancelled := public.liveparams_end_run(
    p_job_id, v_step, case when v_job.run_ended_at is not null then v_job.run_end_reason else 'ended by its owner' end);
  return jsonb_build_object('step', v_step, 'cancelled', v_cancelled);
end;
$$;

-- Writes one outcome onto its request (see 20261128100000_request_rows.sql): while it is undecided,
-- and now also over `cancelled` (the trainer had taken it; what it did is the truth), and over an
-- `applied` at a later step (applied again after a resume rewound the run past it).
create or replace function public.liveparams_store_outcome(p_job_id uuid, p_id text, p_outcome jsonb)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status text := p_outcome ->> 'status';
  v_valid boolean := jsonb_typeof(p_outcome) = 'object'
                     and v_status in ('applied', 'rejected', 'superseded', 'failed')
                     and coalesce(jsonb_typeof(p_outcome -> 'step') in ('number', 'null'), true)
                     and coalesce(jsonb_typeof(p_outcome -> 'changes') in ('object', 'null'), true);
  v_step integer := case when v_valid and jsonb_typeof(p_outcome -> 'step') = 'number'
                         then trunc((p_outcome ->> 'step')::numeric)::integer end;
  v_at timestamptz;
begin
  begin
    v_at := (p_outcome ->> 'at')::timestamptz;
  exception when others then
    v_at := null;
  end;
  update public.parameter_update_requests
     set status = case when v_valid then v_status else 'failed' end,
         step = v_step,
         changes = case when v_valid then p_outcome -> 'changes' end,
         reason = case when v_valid then p_outcome ->> 'reason'
                       else 'outcome recorded before the upgrade: ' || p_outcome::text end,
         superseded_by = case when v_valid then p_outcome ->> 'superseded_by' end,
         decided_at = coalesce(v_at, now())
   where job_id = p_job_id and id = p_id
     and (status is null
          or (v_valid and status = 'cancelled')
          or (v_status = 'applied' and status = 'applied' and v_step < step));
  return found;
end;
$$;

revoke all on function public.liveparams_trainer_stale_seconds() from public;
revoke all on function public.liveparams_end_run(uuid, integer, text) from public, anon, authenticated;
revoke all on function public.liveparams_lock_owned_job(uuid) from public, anon, authenticated;
revoke all on function public.liveparams_store_outcome(uuid, text, jsonb) from public, anon, authenticated;
revoke all on function public.record_trainer_state(uuid, text, integer) from public, anon;
revoke all on function public.request_parameter_update(uuid, jsonb, uuid) from public, anon;
revoke all on function public.cancel_parameter_update(uuid, bigint) from public, anon;
revoke all on function public.end_training_run(uuid) from public, anon;
grant execute on function public.liveparams_trainer_stale_seconds() to anon, authenticated, service_role;
grant execute on function public.record_trainer_state(uuid, text, integer) to authenticated, service_role;
grant execute on function public.request_parameter_update(uuid, jsonb, uuid) to authenticated, service_role;
grant execute on function public.cancel_parameter_update(uuid, bigint) to authenticated, service_role;
grant execute on function public.end_training_run(uuid) to authenticated, service_role;
