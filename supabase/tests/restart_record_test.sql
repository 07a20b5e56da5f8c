-- pgTAP: the last in-process restart on the job row (20261207040000_restart_record.sql). Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(12);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000c1', 'restarter@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('63000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c1', 'restarts', 'running');

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);

select ok((select trainer_restart_kind is null and trainer_restarted_at is null from public.local_training_jobs
            where id = '63000000-0000-0000-0000-000000000001'), 'a job that never restarted says nothing');
select public.record_trainer_restart('63000000-0000-0000-0000-000000000001', 'restart', 12, null,
                                     '{"gradient_accumulation_steps": 4}', 1.25);
select is((select (trainer_restart_kind, trainer_restart_step, trainer_restart_from_step, trainer_restart_settings,
                   trainer_restart_seconds)::text
             from public.local_training_jobs where id = '63000000-0000-0000-0000-000000000001'),
          '(restart,12,,"{""gradient_accumulation_steps"": 4}",1.25)', 'a restart: its step, settings and seconds');
select ok((select trainer_restarted_at is not null from public.local_training_jobs
            where id = '63000000-0000-0000-0000-000000000001'), 'and when');

select public.record_trainer_restart('63000000-0000-0000-0000-000000000001', 'rewind', 10, 15,
                                     '{"per_device_train_batch_size": 4}', 0.5);
select is((select (trainer_restart_kind, trainer_restart_step, trainer_restart_from_step, trainer_restart_seconds)::text
             from public.local_training_jobs where id = '63000000-0000-0000-0000-000000000001'),
          '(rewind,10,15,0.5)', 'a rewind replaces it, with the step it left');

select public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'attached');
select public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'completed', 20);
select is((select trainer_restart_step from public.local_training_jobs
            where id = '63000000-0000-0000-0000-000000000001'), 10, 'it stays after the trainer detached');

select throws_ok($$select public.record_trainer_restart('63000000-0000-0000-0000-000000000001', 'relaunch', 1, null,
                   '{}', 1)$$, '22023', null, 'the kind is restart or rewind');
select throws_ok($$select public.record_trainer_restart('63000000-0000-0000-0000-000000000001', 'restart', 1, null,
                   '{}', -1)$$, '22023', null, 'the seconds are not negative');
select throws_ok($$select public.record_trainer_restart('63000000-0000-0000-0000-000000000001', 'rewind', 10, 5,
                   '{}', 1)$$, '22023', null, 'a rewind goes back, not forward');
select throws_ok($$select public.record_trainer_restart('63000000-0000-0000-0000-0000000000ff', 'restart', 1, null,
                   '{}', 1)$$, 'PT404', null, 'an unknown job');
select public.record_trainer_state('63000000-0000-0000-0000-000000000001', 'attached');  -- a new run
select lives_ok($$select public.request_parameter_update('63000000-0000-0000-0000-000000000001',
                  '{"max_completion_length": 64}')$$, 'max_completion_length is applied by an in-process restart now');
select throws_ok($$select public.request_parameter_update('63000000-0000-0000-0000-000000000001',
                   '{"num_generations": 1}')$$, '22003', null, 'num_generations is 2 or more');
reset role;

set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000c1"}', true);
select throws_ok($$select public.record_trainer_restart('63000000-0000-0000-0000-000000000001', 'restart', 1, null,
                   '{}', 1)$$, '42501', null, 'the owner may not say the trainer restarted');
reset role;

select * from finish();
rollback;
