-- pgTAP: a deleted job's id is never used again, so its job tokens (revoked or not) never reach
-- another job; and a trainer's Auth user never becomes an owner, even once its job is deleted.
-- Run with pg_prove (tests/stack/test_database.py); rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(6);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000e1', 'first@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000e2', 'second@liveparams.test', '{}'),
  ('00000000-0000-0000-0000-0000000000e3', 'trainer@liveparams.invalid',
   '{"liveparams_job_id": "60000000-0000-0000-0000-000000000002", "liveparams_credential_id": "70000000-0000-0000-0000-000000000001"}');
insert into public.local_training_jobs (id, user_id, name, status, job_tokens_revoked_at) values
  ('60000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000e1', 'first', 'running', now()),
  ('60000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000e1', 'trained', 'running', null),
  ('60000000-0000-0000-0000-000000000003', null, 'ownerless', 'running', null);
insert into public.trainer_credentials (id, job_id, auth_user_id) values
  ('70000000-0000-0000-0000-000000000001', '60000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000e3');

-- The first user deletes a job whose job tokens were revoked; a second user tries its id.
set local role authenticated;
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000e1"}', true);
delete from public.local_training_jobs where id = '60000000-0000-0000-0000-000000000001';
select set_config('request.jwt.claims', '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000e2"}', true);
select throws_ok(
  $$ insert into public.local_training_jobs (id, user_id, name, status)
     values ('60000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000e2', 'again', 'running') $$,
  '23505', null, 'the id of a deleted job is refused as an id in use'
);
select lives_ok(
  $$ insert into public.local_training_jobs (user_id, name, status)
     values ('00000000-0000-0000-0000-0000000000e2', 'fresh', 'running') $$,
  'a new job with a new id is created as before'
);

-- The revoked token of the deleted job reaches nothing.
select set_config('request.jwt.claims', json_build_object('role', 'authenticated', 'iss', 'liveparams',
  'job_id', '60000000-0000-0000-0000-000000000001', 'iat', floor(extract(epoch from now())) - 60)::text, true);
select is((select count(*) from public.local_training_jobs), 0::bigint, 'the old job token sees no job');
select is(public.read_parameter_update_requests('60000000-0000-0000-0000-000000000001'), null,
          'and reads no requests');
reset role;

-- The trainer's job is deleted (its credential row goes with it); its Auth user stays.
delete from public.local_training_jobs where id = '60000000-0000-0000-0000-000000000002';
select throws_ok(
  $$ select public.liveparams_adopt_job('60000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-0000000000e3') $$,
  '22023', null, 'adopt refuses a trainer user whose job was deleted'
);
select ok(
  public.liveparams_adopt_job('60000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-0000000000e2'),
  'adopt still gives an ownerless job to a person'
);

select * from finish();
rollback;
