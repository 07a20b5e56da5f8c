-- pgTAP: the job's private channel `liveparams-job-<id>` (20261207150000_private_job_channel.sql), and
-- the jobs list's `liveparams-jobs-<user id>` (20261207160000_private_jobs_channel.sql).
-- Only the job's owner and its trainer may join (read broadcast and presence); only the trainer
-- may track Presence and broadcast (its liveness probe). RLS evaluated as Realtime does:
-- realtime.topic() set, a probe row inserted and selected back, or inserted as the caller.
-- Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(29);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000b2', 'other@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000d1', 'trainer@liveparams.invalid', '{}'),
  ('00000000-0000-0000-0000-0000000000d2', 'trainer-of-other@liveparams.invalid', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('73000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'private channel', 'running'),
  ('73000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000b2', 'someone else''s', 'running');
insert into public.trainer_credentials (id, job_id, auth_user_id) values
  ('74000000-0000-0000-0000-000000000001', '73000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000d1'),
  ('74000000-0000-0000-0000-000000000002', '73000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000d2');

create temporary table claims (who text primary key, claims text);
insert into claims values
  ('anon', '{"role": "anon"}'),
  ('owner', '{"sub": "00000000-0000-0000-0000-0000000000a1", "role": "authenticated"}'),
  ('other', '{"sub": "00000000-0000-0000-0000-0000000000b2", "role": "authenticated"}'),
  ('trainer', '{"sub": "00000000-0000-0000-0000-0000000000d1", "role": "authenticated", "app_metadata":'
              ' {"liveparams_job_id": "73000000-0000-0000-0000-000000000001",'
              ' "liveparams_credential_id": "74000000-0000-0000-0000-000000000001"}}'),
  ('other trainer', '{"sub": "00000000-0000-0000-0000-0000000000d2", "role": "authenticated", "app_metadata":'
              ' {"liveparams_job_id": "73000000-0000-0000-0000-000000000002",'
              ' "liveparams_credential_id": "74000000-0000-0000-0000-000000000002"}}'),
  ('job token', '{"role": "authenticated", "iss": "liveparams", "job_id": "73000000-0000-0000-0000-000000000001"}');
grant select on claims to authenticated, anon;

\ir include/realtime_policies.psql

-- Who may join (read broadcast and presence).
select ok(pg_temp.can_receive('owner', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'the job''s owner sees its Presence (the panel''s "trainer: attached")');
select ok(pg_temp.can_receive('owner', 'liveparams-job-73000000-0000-0000-0000-000000000001'),
  'the job''s owner reads its broadcasts');
select ok(pg_temp.can_receive('trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001'),
  'the job''s trainer credential joins');
select ok(pg_temp.can_receive('job token', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'a job token of the job joins');
select ok(pg_temp.can_receive('owner', 'LIVEPARAMS-JOB-73000000-0000-0000-0000-000000000001'),
  'the topic''s case does not matter (the uuid is the job)');
select ok(not pg_temp.can_receive('anon', 'liveparams-job-73000000-0000-0000-0000-000000000001'),
  'the anon key alone cannot join');
select ok(not pg_temp.can_receive('anon', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'nor watch its Presence');
select ok(not pg_temp.can_receive('other', 'liveparams-job-73000000-0000-0000-0000-000000000001'),
  'another signed-in user cannot join');
select ok(not pg_temp.can_receive('other', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'nor watch its Presence');
select ok(not pg_temp.can_receive('other trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'another job''s trainer cannot');
select ok(not pg_temp.can_receive('owner', 'liveparams-job-not-a-uuid'), 'a topic that names no job grants nothing');
select ok(not pg_temp.can_receive('owner', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'postgres_changes'),
  'only the broadcast and presence extensions are granted');

-- Who may track Presence and broadcast.
select ok(pg_temp.can_send('trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'the trainer tracks its Presence');
select ok(pg_temp.can_send('trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001'),
  'the trainer broadcasts (its acknowledged liveness probe)');
select ok(pg_temp.can_send('job token', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'a job token tracks too');
select ok(not pg_temp.can_send('owner', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'the owner cannot track (only a trainer shows as attached)');
select ok(not pg_temp.can_send('owner', 'liveparams-job-73000000-0000-0000-0000-000000000001'),
  'nor broadcast');
select ok(not pg_temp.can_send('anon', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'the anon key cannot track');
select ok(not pg_temp.can_send('other', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'another user cannot track');
select ok(not pg_temp.can_send('other trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'another job''s trainer cannot track');

-- Revocation ends it.
update public.trainer_credentials set revoked_at = now() where id = '74000000-0000-0000-0000-000000000001';
select ok(not pg_temp.can_receive('trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'a revoked credential cannot join');
select ok(not pg_temp.can_send('trainer', 'liveparams-job-73000000-0000-0000-0000-000000000001', 'presence'),
  'nor track');

-- The jobs list's channel: its user joins it, nobody else; nobody sends on it.
select ok(pg_temp.can_receive('owner', 'liveparams-jobs-00000000-0000-0000-0000-0000000000a1'),
  'a user joins their jobs list''s channel');
select ok(pg_temp.can_receive('owner', 'LIVEPARAMS-JOBS-00000000-0000-0000-0000-0000000000A1'),
  'whatever the topic''s case');
select ok(not pg_temp.can_receive('other', 'liveparams-jobs-00000000-0000-0000-0000-0000000000a1'),
  'another user cannot join it');
select ok(not pg_temp.can_receive('anon', 'liveparams-jobs-00000000-0000-0000-0000-0000000000a1'),
  'nor the anon key');
select ok(not pg_temp.can_receive('job token', 'liveparams-jobs-00000000-0000-0000-0000-0000000000a1'),
  'nor a job token of the user''s job');
select ok(not pg_temp.can_send('owner', 'liveparams-jobs-00000000-0000-0000-0000-0000000000a1'),
  'its user cannot broadcast on it');
select ok(not pg_temp.can_receive('owner', 'liveparams-jobs-not-a-uuid'), 'a topic that names no user grants nothing');

select * from finish();
rollback;
