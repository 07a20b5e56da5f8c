-- pgTAP: live metrics (issue 21). Who reads the history and who writes it, who may receive and
-- send on a job's private metrics topic (RLS on realtime.messages, evaluated as Realtime does:
-- realtime.topic() set, a probe row inserted and selected back), and the bound on a job's rows.
-- Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(17);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000b2', 'other@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000d1', 'trainer@liveparams.invalid', '{}'),
  ('00000000-0000-0000-0000-0000000000d2', 'trainer-of-other@liveparams.invalid', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('80000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'metered', 'running'),
  ('80000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000b2', 'someone else''s', 'running');
insert into public.trainer_credentials (id, job_id, auth_user_id) values
  ('90000000-0000-0000-0000-000000000001', '80000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000d1'),
  ('90000000-0000-0000-0000-000000000002', '80000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000d2');

create temporary table claims (who text primary key, claims text);
insert into claims values
  ('owner', '{"sub": "00000000-0000-0000-0000-0000000000a1", "role": "authenticated"}'),
  ('other', '{"sub": "00000000-0000-0000-0000-0000000000b2", "role": "authenticated"}'),
  ('trainer', '{"sub": "00000000-0000-0000-0000-0000000000d1", "role": "authenticated", "app_metadata":'
              ' {"liveparams_job_id": "80000000-0000-0000-0000-000000000001",'
              ' "liveparams_credential_id": "90000000-0000-0000-0000-000000000001"}}'),
  ('other trainer', '{"sub": "00000000-0000-0000-0000-0000000000d2", "role": "authenticated", "app_metadata":'
              ' {"liveparams_job_id": "80000000-0000-0000-0000-000000000002",'
              ' "liveparams_credential_id": "90000000-0000-0000-0000-000000000002"}}');
grant select on claims to authenticated, anon;

\ir include/realtime_policies.psql

-- Realtime: the owner receives, the trainer sends, nobody else does either.
select ok(pg_temp.can_receive('owner', 'job-metrics:80000000-0000-0000-0000-000000000001'),
  'the owner receives on their job''s metrics topic');
select ok(not pg_temp.can_receive('other', 'job-metrics:80000000-0000-0000-0000-000000000001'),
  'another user does not receive on it');
select ok(not pg_temp.can_receive('trainer', 'job-metrics:80000000-0000-0000-0000-000000000001'),
  'the trainer does not receive on it (it only sends)');
select ok(not pg_temp.can_receive('owner', 'job-metrics:not-a-uuid'), 'a topic that names no job grants nothing');
select ok(pg_temp.can_send('trainer', 'job-metrics:80000000-0000-0000-0000-000000000001'),
  'the job''s trainer sends on its metrics topic');
select ok(not pg_temp.can_send('other trainer', 'job-metrics:80000000-0000-0000-0000-000000000001'),
  'another job''s trainer cannot send on it');
select ok(not pg_temp.can_send('owner', 'job-metrics:80000000-0000-0000-0000-000000000001'),
  'the owner cannot send on it (the points are the trainer''s)');

-- History: only the job's trainer writes, through the RPC.
select pg_temp.act_as('trainer');
select lives_ok(
  $$select public.record_training_metrics('80000000-0000-0000-0000-000000000001',
      '[{"step": 1, "metrics": {"loss": 2.5, "learning_rate": 0.001}}, {"step": 1, "metrics": {"eval_loss": 2.7}},
        {"step": 2, "metrics": {"loss": 2.4}}]')$$,
  'the job''s trainer records points');
select throws_ok(
  $$select public.record_training_metrics('80000000-0000-0000-0000-000000000002', '[{"step": 1, "metrics": {"loss": 1}}]')$$,
  '42501', null, 'a trainer cannot record on another job');
select throws_ok(
  $$select public.record_training_metrics('80000000-0000-0000-0000-000000000001', '[{"step": 3, "metrics": {"loss": "nan"}}]')$$,
  '22023', null, 'a metric that is not a number is refused');
select throws_ok(
  $$insert into public.training_metrics (job_id, step, metrics) values ('80000000-0000-0000-0000-000000000001', 9, '{}')$$,
  '42501', null, 'nobody writes the table directly');
reset role;

select pg_temp.act_as('owner');
select results_eq(
  $$select step, metrics from public.training_metrics where job_id = '80000000-0000-0000-0000-000000000001' order by step$$,
  $$values (1, '{"loss": 2.5, "learning_rate": 0.001, "eval_loss": 2.7}'::jsonb), (2, '{"loss": 2.4}'::jsonb)$$,
  'the owner reads the history; a step''s training and eval points are one row');
select throws_ok(
  $$select public.record_training_metrics('80000000-0000-0000-0000-000000000001', '[{"step": 5, "metrics": {"loss": 1}}]')$$,
  '42501', null, 'the owner cannot write points');
reset role;
select pg_temp.act_as('other');
select is((select count(*)::int from public.training_metrics), 0, 'another user reads no history');
reset role;
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok('select * from public.training_metrics', '42501', null, 'anon reads nothing');
reset role;

-- The bound: 10,000 logged steps (five times the bound), written as the agent would (1,000 points a
-- call), keep at most liveparams_max_metric_rows() rows, spread over the whole run, with the newest
-- step. Not more: this file is one transaction, and while it is open every poll of the stack's
-- Realtime (10 ms apart) decodes its WAL again from its start, so its cost grows with its square.
select pg_temp.act_as('trainer');
do $$
begin
  for v_call in 0..9 loop
    perform public.record_training_metrics('80000000-0000-0000-0000-000000000001',
      (select jsonb_agg(jsonb_build_object('step', s, 'metrics', jsonb_build_object('loss', 1.0 / s)))
         from generate_series(v_call * 1000 + 1, v_call * 1000 + 1000) s));
  end loop;
end;
$$;
reset role;
select ok(
  (select count(*) from public.training_metrics where job_id = '80000000-0000-0000-0000-000000000001')
    <= public.liveparams_max_metric_rows(),
  'after 10,000 steps a job keeps at most liveparams_max_metric_rows() rows');
select results_eq(
  $$select max(step), min(step) < 1000, count(*) filter (where step between 4000 and 6000) > 100
      from public.training_metrics where job_id = '80000000-0000-0000-0000-000000000001'$$,
  $$values (10000, true, true)$$,
  'they cover the whole run, from its start to its newest step');

select * from finish();
rollback;
