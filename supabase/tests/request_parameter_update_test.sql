-- pgTAP: request_parameter_update() and record_parameter_update_outcomes() as
-- each caller sees them. Run with pg_prove against the stack's database (see
-- tests/stack/test_database.py); everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(32);

insert into auth.users (id, email) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test'),
  ('00000000-0000-0000-0000-0000000000b2', 'other@liveparams.test');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'running job', 'running'),
  ('10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000a1', 'finished job', 'completed');

select is(
  (select count(*)::int from jsonb_object_keys(public.liveparams_parameter_spec())), 19,
  'the spec names nineteen parameters'
);

-- The owner.
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000000a1", "role": "authenticated"}', true);

select is(
  public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 5e-05}',
                                  '20000000-0000-0000-0000-000000000001') ->> 'requested_by',
  '00000000-0000-0000-0000-0000000000a1',
  'the owner requests an update, stamped with their user id'
);
select is(
  public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 1e-03}',
                                  '20000000-0000-0000-0000-000000000001') ->> 'learning_rate',
  '0.00005',
  'a retried request id returns the stored request unchanged'
);
select ok(
  public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"command": "save_checkpoint"}') ? 'id',
  'a request without an id gets one'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rat": 1}')$$,
  '22023', null, 'unknown parameters are refused'
);
select throws_like(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rat": 1}')$$,
  '%known parameters: adam_beta1, adam_beta2, adam_epsilon, beta, checkpoint, command%', 'the refusal lists the known parameters'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": "fast"}')$$,
  '22023', null, 'strings are refused for numbers'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": true}')$$,
  '22023', null, 'booleans are refused for numbers'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 0}')$$,
  '22003', null, 'the exclusive lower bound is enforced'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"warmup_steps": 2.5}')$$,
  '22023', null, 'integers must be whole'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"num_generations": 1}')$$,
  '22003', null, 'num_generations is 2 or more (applied by an in-process restart; none is restart-only today)'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"requested_by": "me"}')$$,
  '22023', null, 'server-stamped fields cannot be given'
);
select throws_ok(
  format($$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 1e-4, "x": "%s"}')$$,
         repeat('x', 5000)),
  'PT413', null, 'oversized requests are refused (HTTP 413 through PostgREST)'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000002', '{"learning_rate": 1e-4}')$$,
  'PT409', null, 'jobs that are not running refuse updates (HTTP 409)'
);
select throws_ok(
  $$select public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
      '{"20000000-0000-0000-0000-000000000001": {"status": "applied"}}')$$,
  '42501', null, 'an owner token may not record outcomes'
);

-- Another user.
select set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000000b2", "role": "authenticated"}', true);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 1e-4}')$$,
  'PT404', 'training job 10000000-0000-0000-0000-000000000001 not found',
  'another user cannot request, and learns nothing about the job'
);

-- The job token for this job.
select set_config('request.jwt.claims', '{"role": "authenticated", "job_id": "10000000-0000-0000-0000-000000000001", "iss": "liveparams"}', true);
select is(
  public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
    '{"20000000-0000-0000-0000-000000000001": {"status": "applied", "step": 12,
      "changes": {"learning_rate": {"old": 0.0001, "new": 0.00005}}}}'),
  '{"recorded": ["20000000-0000-0000-0000-000000000001"]}'::jsonb,
  'the job token records an outcome, and the reply names only what was stored'
);
select is(
  public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
    '{"20000000-0000-0000-0000-000000000001": {"status": "rejected"}}'),
  '{"recorded": []}'::jsonb,
  'the first outcome recorded for a request wins'
);
select throws_ok(
  $$select public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
      '{"30000000-0000-0000-0000-000000000009": {"status": "applied"}}')$$,
  '22023', null, 'outcomes for unknown request ids are refused'
);
select throws_ok(
  $$select public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
      '{"legacy-0123456789abcdef": {"status": "applied"}}')$$,
  '22023', null, 'legacy keys of entries that were never written are refused'
);
reset role;  -- an entry as the seed design wrote them: no id; the trigger moves it into the requests table
update public.local_training_jobs
   set parameter_updates = parameter_updates
       || array['{"learning_rate": 0.0002, "requested_at": "2024-12-14T10:30:00.000Z"}'::jsonb]
 where id = '10000000-0000-0000-0000-000000000001';
set local role authenticated;
select is(
  public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
    format('{"%s": {"status": "applied", "step": 3}}',
           (select id from public.parameter_update_requests
             where job_id = '10000000-0000-0000-0000-000000000001' and id like 'legacy-%'))::jsonb) -> 'recorded' ->> 0,
  (select id from public.parameter_update_requests
    where job_id = '10000000-0000-0000-0000-000000000001' and id like 'legacy-%'),
  'the outcome of an entry written without an id is recorded under its legacy id'
);
select throws_ok(
  $$select public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
      '{"legacy-not-a-hash": {"status": "applied"}}')$$,
  '22023', null, 'keys that are neither ids nor legacy keys are refused'
);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 1e-4}')$$,
  'PT404', null, 'a job token cannot request updates'
);

-- The job token for another job.
select set_config('request.jwt.claims', '{"role": "authenticated", "job_id": "10000000-0000-0000-0000-000000000002", "iss": "liveparams"}', true);
select throws_ok(
  $$select public.record_parameter_update_outcomes('10000000-0000-0000-0000-000000000001',
      '{"20000000-0000-0000-0000-000000000001": {"status": "applied"}}')$$,
  '42501', null, 'a token for another job may not record outcomes here'
);

-- anon has no execute privilege at all.
reset role;
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"learning_rate": 1e-4}')$$,
  '42501', null, 'anon cannot call the request RPC'
);

-- service_role may do both.
reset role;
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(
  public.request_parameter_update('10000000-0000-0000-0000-000000000001', '{"weight_decay": 0.1}') ->> 'requested_by',
  'service_role',
  'service_role requests updates on any job'
);

reset role;
select results_eq(
  $$select seq::int, id like 'legacy-%' from public.parameter_update_requests
     where job_id = '10000000-0000-0000-0000-000000000001' order by seq$$,
  $$values (1, false), (2, false), (3, true), (4, false)$$,
  'exactly the accepted requests were stored, numbered in order (the legacy entry among them)'
);
select is(
  (select cardinality(parameter_updates) from public.local_training_jobs where id = '10000000-0000-0000-0000-000000000001'),
  0,
  'the legacy array stays empty'
);
select is(
  (select parameters_in_force from public.local_training_jobs where id = '10000000-0000-0000-0000-000000000001'),
  '{"learning_rate": 0.00005}'::jsonb,
  'the job row shows the value in force as last applied'
);

-- NULL never matches: an ownerless job is nobody's, and a job token has no user.
insert into public.local_training_jobs (id, user_id, name, status) values
  ('10000000-0000-0000-0000-000000000003', null, 'ownerless job', 'running');
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "job_id": "10000000-0000-0000-0000-000000000009"}', true);
select throws_ok(
  $$select public.request_parameter_update('10000000-0000-0000-0000-000000000003', '{"learning_rate": 1e-4}')$$,
  'PT404', null, 'a job token cannot request updates on an ownerless job'
);
reset role;
select ok(public.liveparams_adopt_job('10000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-0000000000a1'),
  'a backend adopts an ownerless job');
select ok(not public.liveparams_adopt_job('10000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-0000000000b2'),
  'an owned job is never taken from its owner');

select * from finish();
rollback;
