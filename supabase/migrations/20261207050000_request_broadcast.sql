-- liveparams: Broadcast from Database for new requests (issue 23, "The hosted arithmetic").
--
-- The agent's opt-in transport LIVEPARAMS_TRANSPORT=broadcast receives a job's new requests as
-- Realtime Broadcast on the private topic `job:<job id>` instead of `postgres_changes`
-- (docs/internals.md, "Request transports"). A trigger hands every new request row to
-- realtime.broadcast_changes, which Supabase Realtime provides in every hosted project (and the
-- local stack provides the same way, before any migration): it inserts one realtime.messages
-- row, which Realtime reads from the WAL and sends, as the event `INSERT` with the payload
-- {record, old_record, operation, table, schema, id}, to the topic's private channels whose
-- joiner passed the SELECT policy below.
--
-- Always on, not per job: a request is rare (people and controllers make them, not training
-- steps), so the cost is one small realtime.messages row per request (hosted Realtime deletes
-- them after 3 days), and nothing is sent while no agent of the job listens on the topic. A
-- per-job switch would have to be set before the agent starts and kept in step with its
-- environment; always on, every agent of a project may pick either transport on its own.
--
-- Only INSERTs: the agent takes new requests only; outcomes are its own UPDATEs.
-- realtime.send never raises (it turns any failure into a WARNING), so a request is never
-- refused because of the broadcast, and the agent's re-reads still find what a lost broadcast
-- did not carry. Nobody may send on `job:<id>` (no INSERT policy): only the database does.

-- The job a requests topic belongs to: `job:<uuid>` gives the uuid, anything else NULL
-- (never an error, so a policy evaluated on another topic simply does not match).
create or replace function public.liveparams_requests_topic_job(p_topic text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case when p_topic ~* '^job:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then substr(p_topic, 5)::uuid end
$$;

grant execute on function public.liveparams_requests_topic_job(text) to anon, authenticated, service_role;

-- Security definer: realtime.send inserts into realtime.messages as the function's owner
-- (the migration's role), not as whoever asked for the update (who may not send on the topic).
create or replace function public.liveparams_broadcast_request()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform realtime.broadcast_changes(
    'job:' || new.job_id::text, tg_op, tg_op, tg_table_name, tg_table_schema, new, old);
  return null;
end;
$$;

revoke all on function public.liveparams_broadcast_request() from public, anon, authenticated;

-- Created only where Realtime provides broadcast_changes (every hosted project, the local stack):
-- elsewhere a trigger calling it would make every request fail.
do $$
begin
  if to_regprocedure('realtime.broadcast_changes(text, text, text, text, text, record, record, text)') is null then
    raise notice 'realtime.broadcast_changes does not exist here: LIVEPARAMS_TRANSPORT=broadcast will receive nothing';
    return;
  end if;
  drop trigger if exists liveparams_broadcast_request on public.parameter_update_requests;
  create trigger liveparams_broadcast_request
    after insert on public.parameter_update_requests
    for each row execute function public.liveparams_broadcast_request();
end;
$$;

-- Who receives on `job:<job id>`: the job's trainer (its credential or job token, not revoked),
-- and the job's owner. Both may already read these rows; the broadcast shows them nothing more.
drop policy if exists "a job's trainer and owner receive its requests" on realtime.messages;
create policy "a job's trainer and owner receive its requests" on realtime.messages
  for select to authenticated
  using (realtime.messages.extension = 'broadcast'
         and public.liveparams_requests_topic_job((select realtime.topic())) is not null
         and (public.liveparams_requests_topic_job((select realtime.topic()))
                = (select public.liveparams_trainer_job_id())
              or exists (select 1 from public.local_training_jobs j
                          where j.id = public.liveparams_requests_topic_job((select realtime.topic()))
                            and j.user_id = (select auth.uid()))));
