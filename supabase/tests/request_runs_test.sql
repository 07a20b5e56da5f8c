-- pgTAP: requests belong to a run (20261206110000_request_runs.sql). Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('61000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'runs', 'running');

-- The trainer's side, as service_role (the matrix checks who may; here what happens).
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.record_trainer_state('61000000-0000-0000-0000-000000000001', 'attached');
select public.request_parameter_update('61000000-0000-0000-0000-000000000001', '{"learning_rate": 0.001}',
                                       '10000000-0000-0000-0000-000000000001');
select public.request_parameter_update('61000000-0000-0000-0000-000000000001', '{"command": "stop"}',
                                       '10000000-0000-0000-0000-000000000002');

-- A crash is not an end.
select public.record_trainer_state('61000000-0000-0000-0000-000000000001', 'crashed', 7);
select is((select count(*)::int from public.parameter_update_requests
            where job_id = '61000000-0000-0000-0000-000000000001' and status is null), 2,
          'a crash leaves the requests pending for the resumed run');
select public.record_trainer_state('61000000-0000-0000-0000-000000000001', 'interrupted', 8);
select is((select trainer_detach_reason || ' ' || trainer_detach_step from public.local_training_jobs
            where id = '61000000-0000-0000-0000-000000000001'), 'interrupted 8', 'Ctrl-C is recorded with its step');
select is((select count(*)::int from public.parameter_update_requests
            where job_id = '61000000-0000-0000-0000-000000000001' and status is null), 2,
          'Ctrl-C is not an end either');

-- The resumed run applies the first and completes: the stop left pending gets its final outcome.
select public.record_trainer_state('61000000-0000-0000-0000-000000000001', 'attached');
select public.record_parameter_update_outcomes('61000000-0000-0000-0000-000000000001',
  '{"10000000-0000-0000-0000-000000000001": {"status": "applied", "step": 9, "changes": {"learning_rate": {"old": 0.01, "new": 0.001}}}}');
select public.record_trainer_state('61000000-0000-0000-0000-000000000001', 'completed', 12);
select is((select status || ': ' || reason || ' (' || step || ')' from public.parameter_update_requests
            where id = '10000000-0000-0000-0000-000000000002'),
          'cancelled: not applied: the run ended at step 12 (12)', 'a pending request gets its final outcome at the end');
select is((select status from public.parameter_update_requests where id = '10000000-0000-0000-0000-000000000001'),
          'applied', 'what was decided stays decided');
select is((select run_end_reason || ' ' || run_end_step from public.local_training_jobs
            where id = '61000000-0000-0000-0000-000000000001'), 'completed 12', 'the job row says the run ended');

-- After the end, requests are refused with the reason, even by the owner; a retry of a stored one is not.
reset role;
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000a1"}', true);
select throws_ok(
  $$select public.request_parameter_update('61000000-0000-0000-0000-000000000001', '{"command": "stop"}')$$,
  'PT409',
  'the run of training job 61000000-0000-0000-0000-000000000001 ended at step 12 (completed); no trainer will apply this request (a new run starts when a trainer attaches)',
  'a request after the run ended is refused with the reason');
select is((public.request_parameter_update('61000000-0000-0000-0000-000000000001', '{"command": "stop"}',
                                           '10000000-0000-0000-0000-000000000002') ->> 'seq'), '2',
          'a retry of a request stored before the end answers as before');
reset role;

-- A new attach opens the next run: requests are accepted again, and the last run's are not delivered.
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.record_trainer_state('61000000-0000-0000-0000-000000000001', 'attached');
select is((select run_ended_at from public.local_training_jobs where id = '61000000-0000-0000-0000-000000000001'),
          null, 'a new attach opens a new run');
select is(jsonb_array_length(public.read_parameter_update_requests('61000000-0000-0000-0000-000000000001') -> 'requests'),
          0, 'the new run gets nothing of the last one');

-- Cancel: only what is pending; the trainer's outcome replaces a cancellation.
select public.request_parameter_update('61000000-0000-0000-0000-000000000001', '{"weight_decay": 0.1}',
                                       '10000000-0000-0000-0000-000000000003');
select throws_ok($$select public.cancel_parameter_update('61000000-0000-0000-0000-000000000001', 1)$$, 'PT409',
  'request #1 of training job 61000000-0000-0000-0000-000000000001 is already applied; only a pending request can be cancelled',
  'a decided request cannot be cancelled');
select is(public.cancel_parameter_update('61000000-0000-0000-0000-000000000001', 3) ->> 'reason',
          'cancelled by its owner', 'a pending request is cancelled');
select public.record_parameter_update_outcomes('61000000-0000-0000-0000-000000000001',
  '{"10000000-0000-0000-0000-000000000003": {"status": "applied", "step": 14, "changes": {"weight_decay": {"old": 0, "new": 0.1}}}}');
select is((select status || ' ' || step from public.parameter_update_requests where id = '10000000-0000-0000-0000-000000000003'),
          'applied 14', 'the trainer had taken it: its outcome replaces the cancellation');

-- Re-applied after a resume from an earlier checkpoint: the row shows the step it is in force from now.
select public.record_parameter_update_outcomes('61000000-0000-0000-0000-000000000001',
  '{"10000000-0000-0000-0000-000000000001": {"status": "applied", "step": 6, "changes": {"learning_rate": {"old": 0.01, "new": 0.001}}}}');
select public.record_parameter_update_outcomes('61000000-0000-0000-0000-000000000001',
  '{"10000000-0000-0000-0000-000000000001": {"status": "applied", "step": 11, "changes": {"learning_rate": {"old": 0.01, "new": 0.001}}}}');
select is((select step from public.parameter_update_requests where id = '10000000-0000-0000-0000-000000000001'),
          6, 'the re-applied step replaces a later one, never an earlier one');

-- Ending the run is refused while a trainer is attached, and works once it is gone.
select throws_ok($$select public.end_training_run('61000000-0000-0000-0000-000000000001')$$, 'PT409',
  'a trainer is attached to training job 61000000-0000-0000-0000-000000000001; end its run with `command=stop` instead',
  'a run with a trainer attached ends with a stop');
update public.local_training_jobs set trainer_seen_at = now() - interval '1 minute'
 where id = '61000000-0000-0000-0000-000000000001';
select public.request_parameter_update('61000000-0000-0000-0000-000000000001', '{"max_grad_norm": 1}');
select is(public.end_training_run('61000000-0000-0000-0000-000000000001'), '{"step": null, "cancelled": 1}'::jsonb,
          'the owner ends a run whose trainer went silent');
reset role;

select * from finish();
rollback;
