-- liveparams: the heartbeat answers with the job's newest request (issue 23, an idle agent's cost).
--
-- record_trainer_state returns the seq of the job's newest request (0: none yet), the number
-- read_parameter_update_requests returns as `latest_seq`. An agent whose push is healthy compares
-- it with the last request it handled and re-reads only when push missed one, instead of
-- re-reading the job's requests on a timer besides its heartbeat. Callers that ignore the answer
-- (older agents, the CLI, SQL) see no other change. Only the callers record_trainer_state already
-- let in (the job's trainer, the service role) get the number, and they may read the requests.
--
-- The wrapper of 20261207020000_pause_resume.sql is kept under a new name and called from here,
-- so its body is not copied. A function's return type cannot be changed in place: the wrapper is
-- renamed, and a new record_trainer_state is created and granted as before.

alter function public.record_trainer_state(uuid, text, integer) rename to liveparams_record_trainer_state_run;
revoke all on function public.liveparams_record_trainer_state_run(uuid, text, integer)
  from public, anon, authenticated, service_role;

create function public.record_trainer_state(p_job_id uuid, p_state text, p_step integer default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.liveparams_record_trainer_state_run(p_job_id, p_state, p_step);  -- who may, and the row
  return coalesce((select max(seq) from public.parameter_update_requests where job_id = p_job_id), 0);
end;
$$;

comment on function public.record_trainer_state(uuid, text, integer) is
  'The trainer''s attachment (attached, alive, paused at p_step, or how it detached); returns the seq of the '
  'job''s newest request (0: none), so that an agent knows whether push missed one.';

revoke all on function public.record_trainer_state(uuid, text, integer) from public, anon;
grant execute on function public.record_trainer_state(uuid, text, integer) to authenticated, service_role;
