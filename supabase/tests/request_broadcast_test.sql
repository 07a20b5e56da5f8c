-- pgTAP: Broadcast from Database of new requests (20261207050000_request_broadcast.sql). The
-- trigger writes one realtime.messages row per new request, as realtime.broadcast_changes
-- shapes it, and only the job's trainer and owner may receive on `job:<id>` (RLS evaluated as
-- Realtime does: realtime.topic() set, a probe row inserted and selected back). Nobody may
-- send there. Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(13);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000b2', 'other@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000d1', 'trainer@liveparams.invalid', '{}'),
  ('00000000-0000-0000-0000-0000000000d2', 'trainer-of-other@liveparams.invalid', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('70000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'broadcast', 'running'),
  ('70000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000b2', 'someone else''s', 'running');
insert into public.trainer_credentials (id, job_id, auth_user_id) values
  ('71000000-0000-0000-0000-000000000001', '70000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000d1'),
  ('71000000-0000-0000-0000-000000000002', '70000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000d2');

create temporary table claims (who text primary key, claims text);
insert into claims values
  ('owner', '{"sub": "00000000-0000-0000-0000-0000000000a1", "role": "authenticated"}'),
  ('other', '{"sub": "00000000-0000-0000-0000-0000000000b2", "role": "authenticated"}'),
  ('trainer', '{"sub": "00000000-0000-0000-0000-0000000000d1", "role": "authenticated", "app_metadata":'
              ' {"liveparams_job_id": "70000000-0000-0000-0000-000000000001",'
              ' "liveparams_credential_id": "71000000-0000-0000-0000-000000000001"}}'),
  ('other trainer', '{"sub": "00000000-0000-0000-0000-0000000000d2", "role": "authenticated", "app_metadata":'
              ' {"liveparams_job_id": "70000000-0000-0000-0000-000000000002",'
              ' "liveparams_credential_id": "71000000-0000-0000-0000-000000000002"}}'),
  ('job token', '{"role": "authenticated", "iss": "liveparams", "job_id": "70000000-0000-0000-0000-000000000001"}');
grant select on claims to authenticated, anon;

\ir include/realtime_policies.psql

-- Who receives on job:<id>.
select ok(pg_temp.can_receive('trainer', 'job:70000000-0000-0000-0000-000000000001'),
  'the job''s trainer credential receives its requests');
select ok(pg_temp.can_receive('job token', 'job:70000000-0000-0000-0000-000000000001'),
  'a job token of the job receives them');
select ok(pg_temp.can_receive('owner', 'job:70000000-0000-0000-0000-000000000001'),
  'the job''s owner receives them');
select ok(not pg_temp.can_receive('other trainer', 'job:70000000-0000-0000-0000-000000000001'),
  'another job''s trainer does not');
select ok(not pg_temp.can_receive('other', 'job:70000000-0000-0000-0000-000000000001'),
  'another user does not');
select ok(not pg_temp.can_receive('trainer', 'job:not-a-uuid'), 'a topic that names no job grants nothing');
select ok(not pg_temp.can_send('trainer', 'job:70000000-0000-0000-0000-000000000001'),
  'the trainer cannot send on it (only the database does)');
select ok(not pg_temp.can_send('owner', 'job:70000000-0000-0000-0000-000000000001'),
  'nor can the owner');
update public.trainer_credentials set revoked_at = now() where id = '71000000-0000-0000-0000-000000000001';
select ok(not pg_temp.can_receive('trainer', 'job:70000000-0000-0000-0000-000000000001'),
  'a revoked credential receives nothing');

-- The trigger: one message per new request, none for an outcome.
select pg_temp.act_as('owner');
select public.request_parameter_update('70000000-0000-0000-0000-000000000001', '{"learning_rate": 5e-05}',
                                       '72000000-0000-0000-0000-000000000001');
reset role;
select results_eq(
  $$select topic, event, private, extension, payload ->> 'operation', payload ->> 'table', payload ->> 'schema',
           payload -> 'old_record', payload #>> '{record,id}', payload #> '{record,params}', (payload ->> 'id')::uuid = id
      from realtime.messages where topic = 'job:70000000-0000-0000-0000-000000000001' and payload is not null$$,
  $$values ('job:70000000-0000-0000-0000-000000000001', 'INSERT', true, 'broadcast', 'INSERT',
            'parameter_update_requests', 'public', 'null'::jsonb, '72000000-0000-0000-0000-000000000001',
            '{"learning_rate": 5e-05}'::jsonb, true)$$,
  'a new request is one private INSERT message on its job''s topic, shaped as broadcast_changes shapes it');
select is(
  (select payload #>> '{record,seq}' from realtime.messages
    where topic = 'job:70000000-0000-0000-0000-000000000001' and payload is not null),
  (select seq::text from public.parameter_update_requests where id = '72000000-0000-0000-0000-000000000001'),
  'the message carries the row''s seq, which the agent orders and deduplicates by');
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.record_parameter_update_outcomes('70000000-0000-0000-0000-000000000001',
  '{"72000000-0000-0000-0000-000000000001": {"status": "applied", "step": 3, "at": "2026-12-07T05:00:00Z",
    "changes": [{"name": "learning_rate", "old": 0.0001, "new": 5e-05}]}}');
select is(
  (select count(*)::int from realtime.messages where topic = 'job:70000000-0000-0000-0000-000000000001'
     and payload is not null),
  1, 'recording an outcome (an UPDATE) sends nothing');
select is(
  (select count(*)::int from realtime.messages where topic = 'job:70000000-0000-0000-0000-000000000002'
     and payload is not null),
  0, 'another job''s topic got nothing');

select * from finish();
rollback;
