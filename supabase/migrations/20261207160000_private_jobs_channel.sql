-- liveparams: the panel's jobs list follows its user's private channel `liveparams-jobs-<user id>`.
--
-- The list receives postgres_changes of the jobs and requests tables, which each row's RLS filters
-- whatever the channel, so its public channel leaked nothing; but a project whose Realtime allows
-- private channels only (Channel Restrictions) refused it, and the list was not live there. A
-- private channel is joined only when a SELECT policy on realtime.messages lets the joiner read the
-- topic (20261207150000_private_job_channel.sql says how Realtime checks it): here, the signed-in
-- user whose id the topic carries. Nobody sends on it (no INSERT policy). The panel falls back to
-- the public channel of the same topic where this migration is missing.

-- The uuid a topic carries after p_prefix (`liveparams-jobs-<uuid>`, `liveparams-job-<uuid>`), in any
-- case; anything else NULL (never an error, so a policy evaluated on another topic simply does not
-- match). One parser for both channels: the job's channel's function now calls it.
create or replace function public.liveparams_topic_uuid(p_topic text, p_prefix text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case when starts_with(lower(p_topic), p_prefix)
               and substr(p_topic, length(p_prefix) + 1) ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then substr(p_topic, length(p_prefix) + 1)::uuid end
$$;

create or replace function public.liveparams_job_topic_job(p_topic text)
returns uuid
language sql
immutable
set search_path = ''
as $$ select public.liveparams_topic_uuid(p_topic, 'liveparams-job-') $$;

grant execute on function public.liveparams_topic_uuid(text, text) to anon, authenticated, service_role;

drop policy if exists "a user joins their jobs list channel" on realtime.messages;
create policy "a user joins their jobs list channel" on realtime.messages
  for select to authenticated
  using (realtime.messages.extension in ('broadcast', 'presence')
         and public.liveparams_topic_uuid((select realtime.topic()), 'liveparams-jobs-') = (select auth.uid()));
