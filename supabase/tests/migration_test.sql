-- pgTAP: migration 20261128100000 on a table filled the old way. The old schema is put
-- back (its migration re-applied, the new triggers dropped), jobs are filled through the
-- old RPCs and by hand as the seed's UI wrote them, then the new migration is applied
-- again and must carry everything over: nothing lost, what was decided stays decided,
-- nothing re-delivered. Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(14);

drop trigger if exists liveparams_move_legacy_appends on public.local_training_jobs;
drop trigger if exists liveparams_move_legacy_inserts on public.local_training_jobs;
\ir ../migrations/20261124045501_liveparams_schema.sql

insert into auth.users (id, email) values ('00000000-0000-0000-0000-0000000000c3', 'old@liveparams.test');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('40000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000c3', 'old job', 'running'),
  ('40000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000c3', 'empty old job', 'running');

set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select public.request_parameter_update('40000000-0000-0000-0000-000000000001', '{"learning_rate": 0.0001}',
                                       '50000000-0000-0000-0000-000000000001');
select public.request_parameter_update('40000000-0000-0000-0000-000000000001', '{"weight_decay": 0.1}',
                                       '50000000-0000-0000-0000-000000000002');
select public.request_parameter_update('40000000-0000-0000-0000-000000000001', '{"learning_rate": 0.0003}',
                                       '50000000-0000-0000-0000-000000000003');
reset role;
-- As the seed's UI wrote them: no id (the agent keyed them legacy-<hash>), and one as JSON text.
update public.local_training_jobs
   set parameter_updates = parameter_updates
       || array['{"learning_rate": 0.0002, "requested_at": "2024-12-14T10:30:00.000Z"}'::jsonb,
                to_jsonb('{"weight_decay": 0.05}'::text),
                '{"max_steps": 300}'::jsonb]
 where id = '40000000-0000-0000-0000-000000000001';
set local role service_role;
select public.record_parameter_update_outcomes('40000000-0000-0000-0000-000000000001', '{
  "50000000-0000-0000-0000-000000000001": {"status": "applied", "step": 5, "at": "2026-11-20T10:00:00.000Z",
                                           "changes": {"learning_rate": {"old": 0.001, "new": 0.0001}}},
  "50000000-0000-0000-0000-000000000002": {"status": "rejected", "step": null, "reason": "too much"},
  "legacy-395cc484792f4906": {"status": "applied", "step": 9,
                              "changes": {"learning_rate": {"old": 0.0001, "new": 0.0002}}},
  "legacy-aa6f2719fa6843ce": {"status": "superseded", "step": 9, "superseded_by": "legacy-395cc484792f4906"}
}');
reset role;
-- An outcome whose request is not in the array (written by hand): kept, not lost.
update public.local_training_jobs
   set parameter_update_outcomes = parameter_update_outcomes || '{"orphan-1": {"status": "failed", "reason": "lost"}}'
 where id = '40000000-0000-0000-0000-000000000001';

-- It defines record_trainer_state returning void; a later migration made it return the newest seq,
-- and a function's return type cannot be replaced in place.
drop function public.record_trainer_state(uuid, text, integer);
\ir ../migrations/20261128100000_request_rows.sql

select results_eq(
  $$select seq::int, id, status, step from public.parameter_update_requests
     where job_id = '40000000-0000-0000-0000-000000000001' order by seq$$,
  $$values (1, '50000000-0000-0000-0000-000000000001', 'applied', 5),
           (2, '50000000-0000-0000-0000-000000000002', 'rejected', null),
           (3, '50000000-0000-0000-0000-000000000003', null, null),
           (4, 'legacy-395cc484792f4906', 'applied', 9),
           (5, 'legacy-aa6f2719fa6843ce', 'superseded', 9),
           (6, 'legacy-07c6d2533814f0fc', null, null),
           (7, 'orphan-1', 'failed', null)$$,
  'every request and outcome moved, in array order, under the ids the agent used'
);
select is(
  (select params from public.parameter_update_requests where job_id = '40000000-0000-0000-0000-000000000001' and id = 'legacy-aa6f2719fa6843ce'),
  '{"weight_decay": 0.05}'::jsonb,
  'an entry stored as JSON text is stored as the object it encodes'
);
select is(
  (select params from public.parameter_update_requests where job_id = '40000000-0000-0000-0000-000000000001' and id = 'legacy-395cc484792f4906'),
  '{"learning_rate": 0.0002}'::jsonb,
  'metadata leaves the parameters'
);
select is(
  (select requested_at from public.parameter_update_requests where job_id = '40000000-0000-0000-0000-000000000001' and id = 'legacy-395cc484792f4906'),
  '2024-12-14T10:30:00.000Z'::timestamptz,
  'requested_at is kept'
);
select is(
  (select decided_at from public.parameter_update_requests where job_id = '40000000-0000-0000-0000-000000000001' and id = '50000000-0000-0000-0000-000000000001'),
  '2026-11-20T10:00:00.000Z'::timestamptz,
  'when an outcome was decided is kept'
);
select is(
  (select reason from public.parameter_update_requests where job_id = '40000000-0000-0000-0000-000000000001' and id = '50000000-0000-0000-0000-000000000002'),
  'too much',
  'a rejection keeps its reason'
);
select is(
  (select superseded_by from public.parameter_update_requests where job_id = '40000000-0000-0000-0000-000000000001' and id = 'legacy-aa6f2719fa6843ce'),
  'legacy-395cc484792f4906',
  'a superseded request keeps what superseded it'
);
select results_eq(
  $$select r ->> 'id' from jsonb_array_elements(
      (public.read_parameter_update_requests('40000000-0000-0000-0000-000000000001')) -> 'requests') r$$,
  $$values ('50000000-0000-0000-0000-000000000003'), ('legacy-07c6d2533814f0fc')$$,
  'a new agent is handed only what was never decided'
);
select is(
  (select parameters_in_force from public.local_training_jobs where id = '40000000-0000-0000-0000-000000000001'),
  '{"learning_rate": 0.0002}'::jsonb,
  'the values in force are those last applied'
);
select is(
  (select parameters_applied_step from public.local_training_jobs where id = '40000000-0000-0000-0000-000000000001'),
  9,
  'with the step they were applied at'
);
select is(
  (select count(*)::int from public.local_training_jobs
    where id in ('40000000-0000-0000-0000-000000000001', '40000000-0000-0000-0000-000000000002')
      and cardinality(parameter_updates) = 0),
  2,
  'the arrays are empty'
);
select hasnt_column('public', 'local_training_jobs', 'parameter_update_outcomes', 'the outcome map is gone');

-- The seed's writers still work after the upgrade.
update public.local_training_jobs
   set parameter_updates = parameter_updates || array['{"learning_rate": 0.0004, "requested_by": "ui"}'::jsonb]
 where id = '40000000-0000-0000-0000-000000000002';
select results_eq(
  $$select seq::int, params, requested_by from public.parameter_update_requests
     where job_id = '40000000-0000-0000-0000-000000000002'$$,
  $$values (1, '{"learning_rate": 0.0004}'::jsonb, 'ui')$$,
  'an entry appended the old way becomes request 1 of its job'
);
select is(
  (select cardinality(parameter_updates) from public.local_training_jobs where id = '40000000-0000-0000-0000-000000000002'),
  0,
  'and the array stays empty'
);

select * from finish();
rollback;
