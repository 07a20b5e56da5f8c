-- pgTAP: the job row holds the trainer's step as of its last report (20261207130000_heartbeat_step.sql).
-- Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(11);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000b3', 'stepper@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('64000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000b3', 'steps', 'running');

select has_column('public', 'local_training_jobs', 'trainer_step', 'the job row has trainer_step');
select col_type_is('public', 'local_training_jobs', 'trainer_step', 'integer', 'an integer, like the other steps');
select is((select trainer_step from public.local_training_jobs where id = '64000000-0000-0000-0000-000000000001'),
          null, 'null until a trainer reports one');

set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "iss": "liveparams", "job_id": "64000000-0000-0000-0000-000000000001"}', true);
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'attached', 30);
select is((select trainer_step from public.local_training_jobs where id = '64000000-0000-0000-0000-000000000001'),
          30, 'attaching records the step it starts at (a resume''s checkpoint)');
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'alive', 35);
select is((select trainer_step || ' ' || coalesce(trainer_detach_step::text, 'none') from public.local_training_jobs
            where id = '64000000-0000-0000-0000-000000000001'),
          '35 none', 'a heartbeat records its step, and it is no detach step');
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'alive');
select is((select trainer_step from public.local_training_jobs where id = '64000000-0000-0000-0000-000000000001'),
          35, 'a heartbeat without a step (an older agent) keeps the last one');
reset role;

-- One beat is one UPDATE of the row: one Realtime change for each listener, as before the column.
create temporary table updates_before as
  select pg_stat_get_xact_tuples_updated('public.local_training_jobs'::regclass) as n;
set local role authenticated;
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'alive', 41);
reset role;
select is(pg_stat_get_xact_tuples_updated('public.local_training_jobs'::regclass) - (select n from updates_before), 1::bigint,
          'a heartbeat writes the row once');

set local role authenticated;
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'paused', 44);
select is((select trainer_step from public.local_training_jobs where id = '64000000-0000-0000-0000-000000000001'),
          44, 'a paused heartbeat records the step it holds at');
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'crashed', 45);
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'alive', 99);
select is((select trainer_step || ' ' || trainer_detach_step from public.local_training_jobs
            where id = '64000000-0000-0000-0000-000000000001'),
          '45 45', 'a detach records its step; a late heartbeat after it changes nothing');
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'attached');
select is((select trainer_step from public.local_training_jobs where id = '64000000-0000-0000-0000-000000000001'),
          null, 'an attach without a step (an older agent) clears the previous run''s');
reset role;

set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000b3"}', true);
select throws_ok($$select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'alive', 1)$$,
                 '42501', null, 'the owner''s session may not report a step: only the job''s trainer (or the service role)');
reset role;

select * from finish();
rollback;
