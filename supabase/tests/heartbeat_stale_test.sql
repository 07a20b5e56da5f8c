-- pgTAP: a trainer's heartbeat stays fresh for 55 s (20261207080000_heartbeat_stale_55s.sql): two of the
-- agent's 25 s beats and 5 s. Everything is rolled back.
begin;
create extension if not exists pgtap with schema extensions;
select plan(3);

insert into auth.users (id, email, raw_app_meta_data) values
  ('00000000-0000-0000-0000-0000000000b3', 'stale@liveparams.test', '{}');
insert into public.local_training_jobs (id, user_id, name, status) values
  ('64000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000b3', 'heard 50 s ago', 'running'),
  ('64000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-0000000000b3', 'silent 60 s', 'running');

select is(public.liveparams_trainer_stale_seconds(), 55, 'a heartbeat stays fresh for 55 s');

-- Both trainers attached; one last heard 50 s ago (a beat late), the other silent for 60 s (its machine vanished).
update public.local_training_jobs
   set trainer_attached_at = now() - interval '10 minutes',
       trainer_seen_at = now() - case name when 'heard 50 s ago' then interval '50 seconds' else interval '60 seconds' end
 where user_id = '00000000-0000-0000-0000-0000000000b3';

set local role authenticated;
select set_config('request.jwt.claims',
  '{"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000b3"}', true);
select throws_ok($$select public.end_training_run('64000000-0000-0000-0000-000000000001')$$, 'PT409',
  'a trainer is attached to training job 64000000-0000-0000-0000-000000000001; end its run with `command=stop` instead',
  'a trainer heard from 50 s ago is attached: its run is not ended under it');
select is(public.end_training_run('64000000-0000-0000-0000-000000000002'), '{"step": null, "cancelled": 0}'::jsonb,
          'a trainer silent for 60 s is gone: the owner may end its run');
reset role;

select * from finish();
