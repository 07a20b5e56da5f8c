-- pgTAP: Row Level Security and column grants on local_training_jobs, and the
-- Realtime publication. Everything is rolled back; counts are scoped to this
-- file's rows because the database may hold other tests' jobs.
begin;
create extension if not exists pgtap with schema extensions;
select plan(15);

insert into auth.users (id, email) values
  ('00000000-0000-0000-0000-0000000000a1', 'owner@liveparams.test'),
  ('00000000-0000-0000-0000-0000000000b2', 'other@liveparams.test');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000a1', 'one', 'running'),
  ('10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000a1', 'two', 'running');

select ok(
  (select relrowsecurity from pg_class where oid = 'public.local_training_jobs'::regclass),
  'RLS is enabled on local_training_jobs'
);
select ok(
  exists (select 1 from pg_publication_tables
           where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'local_training_jobs'),
  'the table is in the supabase_realtime publication'
);
select ok(
  (select relrowsecurity from pg_class where oid = 'public.parameter_update_requests'::regclass)
  and exists (select 1 from pg_publication_tables
               where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'parameter_update_requests'),
  'RLS is enabled on parameter_update_requests, and it is in the publication'
);

set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select throws_ok('select * from public.local_training_jobs', '42501', null, 'anon cannot read jobs at all');

reset role;
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000000a1", "role": "authenticated"}', true);
select is((select count(*)::int from public.local_training_jobs), 2, 'the owner sees their jobs');
select throws_ok(
  $$update public.local_training_jobs set parameter_updates = '{}' where id = '10000000-0000-0000-0000-000000000001'$$,
  '42501', null, 'the owner cannot rewrite the request history'
);
select throws_ok(
  $$update public.parameter_update_requests set status = 'applied' where job_id = '10000000-0000-0000-0000-000000000001'$$,
  '42501', null, 'the owner cannot rewrite outcomes'
);
select lives_ok(
  $$update public.local_training_jobs set status = 'cancelled' where id = '10000000-0000-0000-0000-000000000002'$$,
  'the owner can change the status of their job'
);
select throws_ok(
  $$insert into public.local_training_jobs (user_id, name) values ('00000000-0000-0000-0000-0000000000b2', 'x')$$,
  '42501', null, 'the owner cannot create jobs for someone else'
);

select set_config('request.jwt.claims', '{"sub": "00000000-0000-0000-0000-0000000000b2", "role": "authenticated"}', true);
select is((select count(*)::int from public.local_training_jobs), 0, 'another user sees no jobs');
update public.local_training_jobs set status = 'failed';
select set_config('request.jwt.claims', '{"role": "authenticated", "iss": "liveparams", "job_id": "10000000-0000-0000-0000-000000000001"}', true);
select results_eq(
  'select id::text from public.local_training_jobs',
  $$values ('10000000-0000-0000-0000-000000000001')$$,
  'a job token sees exactly its job'
);
select throws_ok(
  $$update public.parameter_update_requests set status = 'applied'$$,
  '42501', null, 'a job token cannot write outcomes directly'
);

reset role;
select is(
  (select count(*)::int from public.local_training_jobs
    where user_id = '00000000-0000-0000-0000-0000000000a1' and status = 'failed'), 0,
  'another user''s update touched nothing'
);

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select is(
  (select count(*)::int from public.local_training_jobs where user_id = '00000000-0000-0000-0000-0000000000a1'), 2,
  'service_role bypasses RLS'
);
select lives_ok(
  $$update public.local_training_jobs set parameters_in_force = '{}' where id = '10000000-0000-0000-0000-000000000001'$$,
  'service_role can write any column'
);

select * from finish();
rollback;
