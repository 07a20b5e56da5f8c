-- pgTAP: the heartbeat answers with the job's newest request seq (20261207060000_heartbeat_latest_seq.sql).
-- Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(9);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000b2', 'beater@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('63000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000b2', 'beats', 'running'),
  ('63000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000b2', 'other', 'running');

set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "iss": "liveparams", "job_id": "63000000-0000-0000-0000-000000000001"}', true);
select is(public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'attached'), 0::bigint,
          'a job without requests answers 0');
reset role;

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.request_parameter_update('63000000-0000-0000-0000-000000000001', '{"learning_rate": 0.0001}');
select public.request_parameter_update('63000000-0000-0000-0000-000000000001', '{"learning_rate": 0.0002}');
select public.request_parameter_update('63000000-0000-0000-0000-000000000002', '{"learning_rate": 0.0003}');
reset role;

set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "iss": "liveparams", "job_id": "63000000-0000-0000-0000-000000000001"}', true);
select is(public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'alive'),
          (select max(seq) from public.parameter_update_requests where job_id = '63000000-0000-0000-0000-000000000001'),
          'the heartbeat answers the seq of the job''s newest request');
select is(public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'alive'),
          (public.read_parameter_update_requests('63000000-0000-0000-0000-000000000001') ->> 'latest_seq')::bigint,
          'the same number a read calls latest_seq');
select is(public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'paused', 7),
          (select max(seq) from public.parameter_update_requests where job_id = '63000000-0000-0000-0000-000000000001'),
          'so does a paused heartbeat');
select is((select trainer_pause_step from public.local_training_jobs
            where id = '63000000-0000-0000-0000-000000000001'), 7, 'and the row still records the pause');
select throws_ok($$select public.record_trainer_state('63000000-0000-0000-0000-000000000002', 'alive')$$,
                 '42501', null, 'another job''s trainer gets no answer: refused as before');
select throws_ok($$select public.liveparams_record_trainer_state_run('63000000-0000-0000-0000-000000000001', 'alive')$$,
                 '42501', null, 'the renamed wrapper is not callable by a trainer');
reset role;

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'stopped', 8),
          (select max(seq) from public.parameter_update_requests where job_id = '63000000-0000-0000-0000-000000000001'),
          'a detach answers too (the service role may record it)');
reset role;
select ok(not has_function_privilege('anon', 'public.record_trainer_state(uuid, text, integer)', 'execute'),
          'anon may not call it');

select * from finish();
rollback;
