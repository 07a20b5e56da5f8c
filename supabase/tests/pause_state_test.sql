-- pgTAP: a paused trainer on the job row (20261207020000_pause_resume.sql). Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(8);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000b1', 'pauser@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('62000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000b1', 'pauses', 'running');

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);

select lives_ok($$select public.request_parameter_update('62000000-0000-0000-0000-000000000001',
                  '{"command": "pause"}')$$, 'pause is a command the RPC accepts');
select lives_ok($$select public.request_parameter_update('62000000-0000-0000-0000-000000000001',
                  '{"command": "resume"}')$$, 'so is resume');

select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'attached');
select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'paused', 40);
select is((select trainer_pause_step from public.local_training_jobs
            where id = '62000000-0000-0000-0000-000000000001'), 40, 'paused, at its step');
select ok((select trainer_paused_at is not null and trainer_detached_at is null from public.local_training_jobs
            where id = '62000000-0000-0000-0000-000000000001'), 'a paused trainer is attached');
select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'alive');
select ok((select trainer_paused_at is null and trainer_pause_step is null from public.local_training_jobs
            where id = '62000000-0000-0000-0000-000000000001'), 'the heartbeat of a running trainer clears it');

select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'paused', 41);
select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'stopped', 41);
select ok((select trainer_paused_at is null and trainer_detach_reason = 'stopped' from public.local_training_jobs
            where id = '62000000-0000-0000-0000-000000000001'), 'a stop while paused detaches, not paused');
select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'paused', 42);
select ok((select trainer_paused_at is null from public.local_training_jobs
            where id = '62000000-0000-0000-0000-000000000001'), 'a late heartbeat does not pause a detached trainer');
reset role;

set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000b1"}', true);
select throws_ok($$select public.record_trainer_state('62000000-0000-0000-0000-000000000001', 'paused', 1)$$,
                 '42501', null, 'the owner may not say the trainer paused');
reset role;

select * from finish();
rollback;
