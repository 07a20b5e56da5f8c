-- pgTAP: an entry a legacy writer appends that clients could not read back (nested deeper than
-- 32 levels) is stored as a rejected request with the start of its text, and the entries around
-- it are stored as usual. Run with pg_prove (tests/stack/test_database.py); rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(6);

insert into auth.users (id, email) values ('00000000-0000-0000-0000-0000000000d1', 'deep@liveparams.test');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('50000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000d1', 'deep', 'running');

select ok(public.liveparams_json_deeper_than((repeat('[', 33) || repeat(']', 33))::jsonb, 32), '33 levels are too deep');
select ok(not public.liveparams_json_deeper_than((repeat('[', 32) || repeat(']', 32))::jsonb, 32), '32 levels are not');

-- In order: a request, a deep object, JSON text encoding a deep array (stored decoded), a shallow
-- nesting (the agent's to reject), a deep entry reusing the first request's id, and a request.
update public.local_training_jobs
   set parameter_updates = array[
     '{"id": "before", "learning_rate": 0.0005}'::jsonb,
     jsonb_build_object('id', 'deep', 'learning_rate', (repeat('[', 2000) || repeat(']', 2000))::jsonb),
     to_jsonb(repeat('[', 2000) || repeat(']', 2000)),
     '{"id": "nested", "learning_rate": [[[1]]]}'::jsonb,
     jsonb_build_object('id', 'before', 'learning_rate', (repeat('[', 50) || repeat(']', 50))::jsonb),
     '{"id": "after", "weight_decay": 0.1}'::jsonb]
 where id = '50000000-0000-0000-0000-000000000001';

select results_eq(
  $$ select id, status from public.parameter_update_requests
      where job_id = '50000000-0000-0000-0000-000000000001' order by seq $$,
  $$ values ('before', null::text), ('deep', 'rejected'),
            ('legacy-' || left(encode(sha256(convert_to(repeat('[', 2000) || repeat(']', 2000), 'UTF8')), 'hex'), 16),
             'rejected'),
            ('nested', null), ('after', null) $$,
  'deep entries are stored rejected, in their place; the rest wait for the agent; a reused id changes nothing'
);
select is(
  (select reason from public.parameter_update_requests where job_id = '50000000-0000-0000-0000-000000000001' and id = 'deep'),
  'malformed request: nested more than 32 levels deep, deeper than clients read back',
  'the rejection says why'
);
select ok(
  (select params ->> 'unreadable' like '{"id": "deep", "learning_rate": [[[[%' and length(params ->> 'unreadable') = 200
     from public.parameter_update_requests where job_id = '50000000-0000-0000-0000-000000000001' and id = 'deep'),
  'the stored params keep the first 200 characters of the entry'
);
select is(
  (select cardinality(parameter_updates) from public.local_training_jobs where id = '50000000-0000-0000-0000-000000000001'),
  0,
  'the array is emptied as for any append'
);

select * from finish();
rollback;
