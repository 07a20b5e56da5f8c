-- liveparams: the job's Realtime channel `liveparams-job-<job id>` becomes private.
--
-- The agent tracks the trainer's Presence on that channel under the key `trainer`, and the
-- job's panel shows "trainer: attached" from it; both also receive postgres_changes there. As a
-- public channel, anyone holding the publishable (anon) key and a job's id could join it,
-- watch the trainer's Presence and track a fake `trainer` of their own; and a project whose
-- Realtime allows private channels only refused the join outright (no push, no live panel).
--
-- A private channel is authorized by RLS on realtime.messages, evaluated by Realtime with
-- realtime.topic() set to the channel's topic (docs/internals.md, "The job's channel"):
--
--   join / read    a SELECT policy must let the joiner see a probe row of extension `broadcast`
--                  (or `presence`, when the join enables Presence); none: the join is refused
--                  ("Unauthorized: You do not have permissions to read from this Channel topic").
--                  The job's owner (the panel) and the job's trainer (the agent) may.
--   track          an INSERT policy for extension `presence`, checked at the first track;
--                  refused, the track is answered with an error and nobody sees it.
--   broadcast      an INSERT policy for extension `broadcast`; refused, the message is dropped
--                  WITHOUT a reply even when acknowledgement was asked for. The agent's liveness
--                  probe is such an acknowledged broadcast, so the trainer needs this one too.
--
-- Only the trainer (its credential or job token, not revoked: liveparams_trainer_job_id) may
-- track or broadcast; the owner reads. postgres_changes on the channel is unchanged: the rows'
-- own RLS decides what each joiner receives.
--
-- The agent and the panel join privately and fall back to the public channel where this
-- migration is missing (the join is refused there), so either side may be upgraded first.

-- The job a job channel's topic belongs to: `liveparams-job-<uuid>` gives the uuid, anything else
-- NULL (never an error, so a policy evaluated on another topic simply does not match).
create or replace function public.liveparams_job_topic_job(p_topic text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case when p_topic ~* '^liveparams-job-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then substr(p_topic, 16)::uuid end
$$;

grant execute on function public.liveparams_job_topic_job(text) to anon, authenticated, service_role;

drop policy if exists "a job's trainer and owner join its channel" on realtime.messages;
create policy "a job's trainer and owner join its channel" on realtime.messages
  for select to authenticated
  using (realtime.messages.extension in ('broadcast', 'presence')
         and public.liveparams_job_topic_job((select realtime.topic())) is not null
         and (public.liveparams_job_topic_job((select realtime.topic()))
                = (select public.liveparams_trainer_job_id())
              or exists (select 1 from public.local_training_jobs j
                          where j.id = public.liveparams_job_topic_job((select realtime.topic()))
                            and j.user_id = (select auth.uid()))));

drop policy if exists "a job's trainer tracks and probes on its channel" on realtime.messages;
create policy "a job's trainer tracks and probes on its channel" on realtime.messages
  for insert to authenticated
  with check (realtime.messages.extension in ('broadcast', 'presence')
              and public.liveparams_job_topic_job((select realtime.topic()))
                  = (select public.liveparams_trainer_job_id()));
