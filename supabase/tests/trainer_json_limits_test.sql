-- pgTAP: what a trainer writes as JSON is bounded (20261207140000_trainer_json_limits.sql). An
-- outcome larger than 16384 bytes, nested deeper than 32 levels or at a negative step is stored as
-- `failed` with the reason, and the other outcomes of the call as usual; restart settings like
-- that are refused. Run as the job's trainer (a job token's claims), as PostgREST would run its
-- call. Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(15);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000f1', 'bounded@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('64000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000f1', 'bounded', 'running');

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.record_trainer_state('64000000-0000-0000-0000-000000000001', 'attached');
select public.request_parameter_update('64000000-0000-0000-0000-000000000001', '{"learning_rate": 0.001}',
                                       ('14000000-0000-0000-0000-00000000000' || n)::uuid)
  from generate_series(1, 8) n;
reset role;

set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "iss": "liveparams", "job_id": "64000000-0000-0000-0000-000000000001"}', true);

-- Larger than any outcome a trainer writes: every live parameter changed at once, old and new as
-- long as PostgreSQL prints a number (1e-308 in full), plus a reason of 500 characters: 13,718 bytes.
select is(
  public.record_parameter_update_outcomes('64000000-0000-0000-0000-000000000001', jsonb_build_object(
    '14000000-0000-0000-0000-000000000001', jsonb_build_object(
      'status', 'applied', 'step', 2147483647, 'at', '2026-12-07T14:00:00.000Z', 'reason', repeat('r', 500),
      'changes', (select jsonb_object_agg(k, jsonb_build_object('old', -1.2345678901234567e-308, 'new', 1.2345678901234567e-308))
                    from jsonb_object_keys(public.liveparams_parameter_spec()) k)))),
  '{"recorded": ["14000000-0000-0000-0000-000000000001"]}', 'the largest outcome a trainer writes is recorded');
select is((select status || ' ' || step from public.parameter_update_requests
            where id = '14000000-0000-0000-0000-000000000001'), 'applied 2147483647', 'as it came');

-- One call: a deep outcome, a large one, one at a negative step, one too late, and a good one.
select is(
  public.record_parameter_update_outcomes('64000000-0000-0000-0000-000000000001', jsonb_build_object(
    '14000000-0000-0000-0000-000000000002', jsonb_build_object('status', 'applied', 'step', 1,
      'changes', jsonb_build_object('learning_rate', jsonb_build_object('old', 0.001,
                                    'new', (repeat('[', 3000) || repeat(']', 3000))::jsonb))),
    '14000000-0000-0000-0000-000000000003', jsonb_build_object('status', 'rejected', 'step', 1, 'reason', repeat('x', 17000)),
    '14000000-0000-0000-0000-000000000004', jsonb_build_object('status', 'applied', 'step', -5,
      'changes', '{"weight_decay": {"old": 0, "new": 0.5}}'::jsonb),
    '14000000-0000-0000-0000-000000000005', jsonb_build_object('status', 'applied', 'step', 2147483648,
      'changes', '{"weight_decay": {"old": 0, "new": 0.6}}'::jsonb),
    '14000000-0000-0000-0000-000000000006', jsonb_build_object('status', 'applied', 'step', 3,
      'changes', '{"max_grad_norm": {"old": 1, "new": 0.5}}'::jsonb))) -> 'recorded',
  '["14000000-0000-0000-0000-000000000002", "14000000-0000-0000-0000-000000000003", "14000000-0000-0000-0000-000000000004", "14000000-0000-0000-0000-000000000005", "14000000-0000-0000-0000-000000000006"]',
  'every outcome of the call is recorded: the refused ones as failed');
select results_eq(
  $$ select id, status, step, changes, reason from public.parameter_update_requests
      where job_id = '64000000-0000-0000-0000-000000000001' and seq between 2 and 6 order by seq $$,
  $$ values
       ('14000000-0000-0000-0000-000000000002', 'failed', null::integer, null::jsonb,
        'the trainer''s outcome was refused: nested more than 32 levels deep, deeper than clients read back'),
       ('14000000-0000-0000-0000-000000000003', 'failed', null, null,
        'the trainer''s outcome was refused: 17047 bytes; the limit is 16384'),
       ('14000000-0000-0000-0000-000000000004', 'failed', null, null,
        'the trainer''s outcome was refused: step must be from 0 to 2147483647, got -5'),
       ('14000000-0000-0000-0000-000000000005', 'failed', null, null,
        'the trainer''s outcome was refused: step must be from 0 to 2147483647, got 2147483648'),
       ('14000000-0000-0000-0000-000000000006', 'applied', 3, '{"max_grad_norm": {"old": 1, "new": 0.5}}'::jsonb, null) $$,
  'a deep, a large, a negative-step or a too-late outcome is stored failed with why; the good one as it came');
select ok(
  (select parameters_in_force -> 'learning_rate' = parameters_in_force -> 'beta'
      and parameters_in_force -> 'weight_decay' = parameters_in_force -> 'beta'
     from public.local_training_jobs where id = '64000000-0000-0000-0000-000000000001'),
  'nothing of a refused outcome is in force: what the first outcome applied stays');
select is(
  (select parameters_in_force -> 'max_grad_norm' from public.local_training_jobs
    where id = '64000000-0000-0000-0000-000000000001'),
  '0.5'::jsonb, 'the good one is');

-- A refused outcome never replaces what is decided: not an applied step, not a cancellation.
select public.record_parameter_update_outcomes('64000000-0000-0000-0000-000000000001',
  '{"14000000-0000-0000-0000-000000000006": {"status": "applied", "step": -1, "changes": {"max_grad_norm": {"old": 1, "new": 9}}}}');
select is((select status || ' ' || step from public.parameter_update_requests
            where id = '14000000-0000-0000-0000-000000000006'), 'applied 3', 'an applied step stays');
reset role;
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.cancel_parameter_update('64000000-0000-0000-0000-000000000001', 7);
reset role;
set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "iss": "liveparams", "job_id": "64000000-0000-0000-0000-000000000001"}', true);
select public.record_parameter_update_outcomes('64000000-0000-0000-0000-000000000001', jsonb_build_object(
  '14000000-0000-0000-0000-000000000007', jsonb_build_object('status', 'rejected', 'reason', repeat('x', 17000))));
select is((select status from public.parameter_update_requests where id = '14000000-0000-0000-0000-000000000007'),
          'cancelled', 'a cancellation stays');

-- Restart settings: refused with 22023 when large or deep, as a bad kind is; the usual ones recorded.
select throws_ok(
  format($$select public.record_trainer_restart('64000000-0000-0000-0000-000000000001', 'restart', 1, null, %L, 1)$$,
         jsonb_build_object('per_device_train_batch_size', (repeat('[', 40) || repeat(']', 40))::jsonb)),
  '22023', 'restart settings refused: nested more than 32 levels deep, deeper than clients read back',
  'deep restart settings are refused');
select throws_ok(
  format($$select public.record_trainer_restart('64000000-0000-0000-0000-000000000001', 'restart', 1, null, %L, 1)$$,
         jsonb_build_object('per_device_train_batch_size', repeat('x', 5000))),
  '22023', 'restart settings refused: 5035 bytes; the limit is 4096', 'large restart settings are refused');
select throws_ok(
  $$select public.record_trainer_restart('64000000-0000-0000-0000-000000000001', 'restart', -1, null, '{}', 1)$$,
  '22023', null, 'a negative restart step is refused');
select throws_ok(
  $$select public.record_trainer_restart('64000000-0000-0000-0000-000000000001', 'rewind', 0, -3, '{}', 1)$$,
  '22023', null, 'a negative rewind from_step is refused');
select lives_ok(
  $$select public.record_trainer_restart('64000000-0000-0000-0000-000000000001', 'restart', 0, null,
      '{"per_device_train_batch_size": 64, "gradient_accumulation_steps": 16, "max_completion_length": 4096, "num_generations": 16}', 2.5)$$,
  'the settings a restart goes on with are recorded');
select is((select trainer_restart_settings ->> 'num_generations' from public.local_training_jobs
            where id = '64000000-0000-0000-0000-000000000001'), '16', 'as they came');
reset role;

select ok(
  not public.liveparams_json_deeper_than(
    (select to_jsonb(j) from public.local_training_jobs j where id = '64000000-0000-0000-0000-000000000001'),
    public.liveparams_max_json_levels()),
  'the job row reads back');
select * from finish();
rollback;
