-- pgTAP: who may do what, as a matrix. Every RPC and every kind of table access, for each
-- caller, on a job with an owner and on an ownerless job (user_id null, as every row of an
-- upgraded seed table is). Each call runs in a subtransaction that is rolled back, so the
-- cells are independent. The same matrix is the table in docs/security.md. Everything is
-- rolled back.
--
-- Cells: ok | invisible (the call works, the job is not visible) | a count | a SQLSTATE
-- (42501 not allowed, PT404 "not found" that does not say whether the job exists).
begin;
create extension if not exists pgtap with schema extensions;
select plan(13);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000b2', 'other@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000d1', 'trainer-owned@liveparams.invalid', '{}'),
  ('00000000-0000-0000-0000-0000000000d0', 'trainer-ownerless@liveparams.invalid', '{}'),
  ('00000000-0000-0000-0000-0000000000e1', 'revoked-owned@liveparams.invalid', '{}'),
  ('00000000-0000-0000-0000-0000000000e0', 'revoked-ownerless@liveparams.invalid', '{}');
insert into public.local_training_jobs (id, user_id, name, status, job_tokens_revoked_at) values
  ('60000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'owned', 'running',
   now() - interval '1 hour'),
  ('60000000-0000-0000-0000-000000000000', null, 'ownerless', 'running', now() - interval '1 hour'),
  ('60000000-0000-0000-0000-000000000009', '00000000-0000-0000-0000-0000000000b2', 'another job', 'running', null);
insert into public.trainer_credentials (id, job_id, auth_user_id, revoked_at) values
  ('70000000-0000-0000-0000-000000000001', '60000000-0000-0000-0000-000000000001',
   '00000000-0000-0000-0000-0000000000d1', null),
  ('70000000-0000-0000-0000-000000000000', '60000000-0000-0000-0000-000000000000',
   '00000000-0000-0000-0000-0000000000d0', null),
  ('71000000-0000-0000-0000-000000000001', '60000000-0000-0000-0000-000000000001',
   '00000000-0000-0000-0000-0000000000e1', now()),
  ('71000000-0000-0000-0000-000000000000', '60000000-0000-0000-0000-000000000000',
   '00000000-0000-0000-0000-0000000000e0', now());
insert into public.parameter_update_requests (job_id, id, seq, params) values
  ('60000000-0000-0000-0000-000000000001', 'r1', 1, '{"learning_rate": 0.001}'),
  ('60000000-0000-0000-0000-000000000000', 'r1', 1, '{"learning_rate": 0.001}');

create table public.matrix_jobs (kind text primary key, job uuid, credential uuid, revoked_credential uuid,
                                 trainer uuid, revoked_trainer uuid);
insert into public.matrix_jobs values
  ('owned', '60000000-0000-0000-0000-000000000001', '70000000-0000-0000-0000-000000000001',
   '71000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000e1'),
  ('ownerless', '60000000-0000-0000-0000-000000000000', '70000000-0000-0000-0000-000000000000',
   '71000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-0000000000d0', '00000000-0000-0000-0000-0000000000e0');

-- What each action runs; %1$s is the job's id.
create table public.matrix_actions (action text primary key, statement text);
insert into public.matrix_actions values
  ('request_parameter_update', $$select 'ok' from public.request_parameter_update('%1$s', '{"learning_rate": 0.002}')$$),
  ('record_parameter_update_outcomes',
   $$select 'ok' from public.record_parameter_update_outcomes('%1$s', '{"r1": {"status": "applied", "step": 1}}')$$),
  ('read_parameter_update_requests',
   $$select case when public.read_parameter_update_requests('%1$s') is null then 'invisible' else 'ok' end$$),
  ('record_trainer_state', $$select 'ok' from public.record_trainer_state('%1$s', 'alive')$$),
  ('record_trainer_restart', $$select 'ok' from public.record_trainer_restart('%1$s', 'restart', 4, null, '{}', 0.5)$$),
  ('cancel_parameter_update', $$select 'ok' from public.cancel_parameter_update('%1$s', 1)$$),
  ('end_training_run', $$select 'ok' from public.end_training_run('%1$s')$$),
  ('liveparams_adopt_job',
   $$select public.liveparams_adopt_job('%1$s', '00000000-0000-0000-0000-0000000000b2')::text$$),
  ('liveparams_revoke_trainer_credentials',
   $$select 'ok' from public.liveparams_revoke_trainer_credentials('%1$s')$$),
  ('select job', $$select count(*)::text from public.local_training_jobs where id = '%1$s'$$),
  ('select requests', $$select count(*)::text from public.parameter_update_requests where job_id = '%1$s'$$),
  ('update job', $$with u as (update public.local_training_jobs set name = 'renamed' where id = '%1$s' returning 1)
                   select count(*)::text from u$$),
  ('delete job', $$with d as (delete from public.local_training_jobs where id = '%1$s' returning 1)
                   select count(*)::text from d$$),
  ('insert job', $$with i as (insert into public.local_training_jobs (user_id, name, status)
                   values (auth.uid(), 'new', 'running') returning 1) select 'ok' from i$$);

-- Runs one statement as the current role and claims, rolls it back, and says what happened.
create function public.matrix_try(p_statement text, p_job uuid)
returns text
language plpgsql
as $$
declare
  v_result text;
begin
  execute format(p_statement, p_job) into v_result;
  raise exception using errcode = 'LPT00', message = coalesce(v_result, 'null');
exception
  when sqlstate 'LPT00' then return sqlerrm;
  when others then return sqlstate;
end;
$$;
grant select on public.matrix_jobs, public.matrix_actions to anon, authenticated, service_role;
grant execute on function public.matrix_try(text, uuid) to anon, authenticated, service_role;

-- The expected matrix: action, caller, on the owned job, on the ownerless job.
create table public.matrix_expected (action text, caller text, owned text, ownerless text);
insert into public.matrix_expected values
  ('request_parameter_update', 'owner', 'ok', 'PT404'),
  ('request_parameter_update', 'other user', 'PT404', 'PT404'),
  ('request_parameter_update', 'trainer session of the job', 'PT404', 'PT404'),
  ('request_parameter_update', 'trainer session of another job', 'PT404', 'PT404'),
  ('request_parameter_update', 'revoked trainer session', 'PT404', 'PT404'),
  ('request_parameter_update', 'job token of the job', 'PT404', 'PT404'),
  ('request_parameter_update', 'job token of another job', 'PT404', 'PT404'),
  ('request_parameter_update', 'revoked job token', 'PT404', 'PT404'),
  ('request_parameter_update', 'anon', '42501', '42501'),
  ('request_parameter_update', 'service_role', 'ok', 'ok'),
  ('record_parameter_update_outcomes', 'owner', '42501', '42501'),
  ('record_parameter_update_outcomes', 'other user', '42501', '42501'),
  ('record_parameter_update_outcomes', 'trainer session of the job', 'ok', 'ok'),
  ('record_parameter_update_outcomes', 'trainer session of another job', '42501', '42501'),
  ('record_parameter_update_outcomes', 'revoked trainer session', '42501', '42501'),
  ('record_parameter_update_outcomes', 'job token of the job', 'ok', 'ok'),
  ('record_parameter_update_outcomes', 'job token of another job', '42501', '42501'),
  ('record_parameter_update_outcomes', 'revoked job token', '42501', '42501'),
  ('record_parameter_update_outcomes', 'anon', '42501', '42501'),
  ('record_parameter_update_outcomes', 'service_role', 'ok', 'ok'),
  ('read_parameter_update_requests', 'owner', 'ok', 'invisible'),
  ('read_parameter_update_requests', 'other user', 'invisible', 'invisible'),
  ('read_parameter_update_requests', 'trainer session of the job', 'ok', 'ok'),
  ('read_parameter_update_requests', 'trainer session of another job', 'invisible', 'invisible'),
  ('read_parameter_update_requests', 'revoked trainer session', 'invisible', 'invisible'),
  ('read_parameter_update_requests', 'job token of the job', 'ok', 'ok'),
  ('read_parameter_update_requests', 'job token of another job', 'invisible', 'invisible'),
  ('read_parameter_update_requests', 'revoked job token', 'invisible', 'invisible'),
  ('read_parameter_update_requests', 'anon', '42501', '42501'),
  ('read_parameter_update_requests', 'service_role', 'ok', 'ok'),
  ('record_trainer_state', 'owner', '42501', '42501'),
  ('record_trainer_state', 'other user', '42501', '42501'),
  ('record_trainer_state', 'trainer session of the job', 'ok', 'ok'),
  ('record_trainer_state', 'trainer session of another job', '42501', '42501'),
  ('record_trainer_state', 'revoked trainer session', '42501', '42501'),
  ('record_trainer_state', 'job token of the job', 'ok', 'ok'),
  ('record_trainer_state', 'job token of another job', '42501', '42501'),
  ('record_trainer_state', 'revoked job token', '42501', '42501'),
  ('record_trainer_state', 'anon', '42501', '42501'),
  ('record_trainer_state', 'service_role', 'ok', 'ok');
-- The trainer's restart (20261207040000_restart_record.sql): as its state.
insert into public.matrix_expected
  select 'record_trainer_restart', caller, owned, ownerless from public.matrix_expected
   where action = 'record_trainer_state';
-- The owner's say over a run (20261206110000_request_runs.sql): as request_parameter_update.
insert into public.matrix_expected
  select a.action, e.caller, e.owned, e.ownerless
    from public.matrix_expected e, (values ('cancel_parameter_update'), ('end_training_run')) a (action)
   where e.action = 'request_parameter_update';
insert into public.matrix_expected
  select action, caller, '42501', '42501'
    from (values ('liveparams_adopt_job'), ('liveparams_revoke_trainer_credentials')) a (action),
         (values ('owner'), ('other user'), ('trainer session of the job'), ('trainer session of another job'),
                 ('revoked trainer session'), ('job token of the job'), ('job token of another job'),
                 ('revoked job token'), ('anon')) c (caller);
insert into public.matrix_expected values
  ('liveparams_adopt_job', 'service_role', 'false', 'true'),
  ('liveparams_revoke_trainer_credentials', 'service_role', 'ok', 'ok'),
  ('select job', 'owner', '1', '0'),
  ('select job', 'other user', '0', '0'),
  ('select job', 'trainer session of the job', '1', '1'),
  ('select job', 'trainer session of another job', '0', '0'),
  ('select job', 'revoked trainer session', '0', '0'),
  ('select job', 'job token of the job', '1', '1'),
  ('select job', 'job token of another job', '0', '0'),
  ('select job', 'revoked job token', '0', '0'),
  ('select job', 'anon', '42501', '42501'),
  ('select job', 'service_role', '1', '1');
insert into public.matrix_expected
  select 'select requests', caller, owned, ownerless from public.matrix_expected where action = 'select job';
insert into public.matrix_expected
  select a.action, e.caller,
         case when e.caller in ('owner', 'service_role', 'anon') then e.owned else '0' end,
         case when e.caller in ('service_role', 'anon') then e.ownerless else '0' end
    from public.matrix_expected e, (values ('update job'), ('delete job')) a (action)
   where e.action = 'select job';
insert into public.matrix_expected
  select 'insert job', caller, result, result
    from (values ('owner', 'ok'), ('other user', 'ok'), ('trainer session of the job', '42501'),
                 ('trainer session of another job', '42501'), ('revoked trainer session', '42501'),
                 ('job token of the job', '42501'), ('job token of another job', '42501'),
                 ('revoked job token', '42501'), ('anon', '42501'), ('service_role', 'ok')) r (caller, result);
grant select on public.matrix_expected to anon, authenticated, service_role;

select is((select count(*)::int from public.matrix_expected), 14 * 10, 'the matrix has a cell pair for every action and caller');

-- Claims of each caller for a job (the row of matrix_jobs): what PostgREST puts in request.jwt.claims.
create function public.matrix_claims(p_caller text, p_kind text)
returns text
language sql
as $$
  select case p_caller
    when 'owner' then '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000a1"}'::jsonb
    when 'other user' then '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000b2"}'::jsonb
    when 'trainer session of the job' then jsonb_build_object('role', 'authenticated', 'sub', j.trainer,
      'app_metadata', jsonb_build_object('liveparams_job_id', j.job, 'liveparams_credential_id', j.credential))
    when 'trainer session of another job' then jsonb_build_object('role', 'authenticated', 'sub', o.trainer,
      'app_metadata', jsonb_build_object('liveparams_job_id', o.job, 'liveparams_credential_id', o.credential))
    when 'revoked trainer session' then jsonb_build_object('role', 'authenticated', 'sub', j.revoked_trainer,
      'app_metadata', jsonb_build_object('liveparams_job_id', j.job, 'liveparams_credential_id', j.revoked_credential))
    when 'job token of the job' then jsonb_build_object('role', 'authenticated', 'iss', 'liveparams', 'job_id', j.job,
      'iat', floor(extract(epoch from now())))
    when 'job token of another job' then jsonb_build_object('role', 'authenticated', 'iss', 'liveparams',
      'job_id', '60000000-0000-0000-0000-000000000009', 'iat', floor(extract(epoch from now())))
    when 'revoked job token' then jsonb_build_object('role', 'authenticated', 'iss', 'liveparams', 'job_id', j.job,
      'iat', floor(extract(epoch from now() - interval '2 hours')))
    when 'anon' then '{"role": "anon"}'::jsonb
    when 'service_role' then '{"role": "service_role"}'::jsonb
  end::text
    from public.matrix_jobs j, public.matrix_jobs o
   where j.kind = p_kind and o.kind <> p_kind
$$;

-- One test per caller: every action on both jobs, as that caller.
create function public.matrix_check(p_caller text)
returns text
language plpgsql
as $$
declare
  v_role text := case p_caller when 'anon' then 'anon' when 'service_role' then 'service_role' else 'authenticated' end;
  v_actual text := '';
  v_expected text := '';
  v_action record;
  v_job record;
  v_cell text;
begin
  for v_action in select a.action, a.statement, e.owned, e.ownerless from public.matrix_actions a
                    join public.matrix_expected e on e.action = a.action and e.caller = p_caller order by a.action loop
    for v_job in select * from public.matrix_jobs order by kind loop
      perform set_config('request.jwt.claims', public.matrix_claims(p_caller, v_job.kind), true);
      execute format('set local role %I', v_role);
      v_cell := public.matrix_try(v_action.statement, v_job.job);
      reset role;
      v_actual := v_actual || format(E'%s on the %s job: %s\n', v_action.action, v_job.kind, v_cell);
      v_expected := v_expected || format(E'%s on the %s job: %s\n', v_action.action, v_job.kind,
                                         case v_job.kind when 'owned' then v_action.owned else v_action.ownerless end);
    end loop;
  end loop;
  return extensions.is(v_actual, v_expected, format('the matrix row of: %s', p_caller));
end;
$$;

select public.matrix_check(caller)
  from (values ('owner'), ('other user'), ('trainer session of the job'), ('trainer session of another job'),
               ('revoked trainer session'), ('job token of the job'), ('job token of another job'),
               ('revoked job token'), ('anon'), ('service_role')) c (caller);

-- A job token whose job_id is no uuid matches nothing, without an error.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "iss": "liveparams", "job_id": "x''; --"}', true);
select is((select count(*)::int from public.local_training_jobs), 0, 'a job_id claim that is no uuid matches nothing');
reset role;

-- A backend adopts ownerless jobs for users, never for a trainer's Auth user.
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select throws_ok(
  $$select public.liveparams_adopt_job('60000000-0000-0000-0000-000000000000', '00000000-0000-0000-0000-0000000000d1')$$,
  '22023', null, 'a trainer user cannot be given a job'
);
reset role;

select * from finish();
rollback;
