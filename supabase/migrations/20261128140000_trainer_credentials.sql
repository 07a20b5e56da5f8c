-- liveparams: trainer credentials that work with any signing key, and that can be revoked at once.
--
-- A trainer (the process running the training) holds one of two credentials
-- (docs/security.md):
--
--   trainer session   a Supabase Auth user made for one job by a backend through the
--                     admin API, with {"liveparams_job_id", "liveparams_credential_id"}
--                     in its app_metadata (which only the admin API can change). The
--                     trainer holds only its refresh token and keeps the session fresh.
--                     Access tokens are signed by Auth with whatever key the project
--                     uses (the legacy HS256 secret or asymmetric signing keys).
--   job token         (legacy) an HS256 JWT minted with the project's JWT secret:
--                     {"role": "authenticated", "iss": "liveparams", "job_id": ...}, no sub.
--
-- Both are answered by one function, liveparams_trainer_job_id(): the job the caller
-- may read and record on, or NULL. A session is accepted only while its row in
-- trainer_credentials is not revoked, so revoking takes effect at the next query and
-- the next Realtime change, not when the access token expires. Job tokens cannot be
-- listed (anyone with the secret can mint one), so they are revoked per job: every job
-- token of a job issued up to local_training_jobs.job_tokens_revoked_at is refused.
-- Nothing here ever matches through NULL.

create table if not exists public.trainer_credentials (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null references public.local_training_jobs (id) on delete cascade,
  auth_user_id uuid unique references auth.users (id) on delete set null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

create index if not exists trainer_credentials_job_id_idx on public.trainer_credentials (job_id);

comment on table public.trainer_credentials is
  'One row per trainer session (a per-job Auth user). Revoked rows stay as a record. Write as service_role only.';
comment on column public.trainer_credentials.auth_user_id is
  'The Auth user whose refresh token the trainer holds; null once that user is deleted.';

alter table public.local_training_jobs
  add column if not exists job_tokens_revoked_at timestamptz;

comment on column public.local_training_jobs.job_tokens_revoked_at is
  'Legacy HS256 job tokens of this job issued at or before this time (iat, whole seconds) are refused.';

-- Whether the caller's JWT presents itself as a trainer credential (valid or not). Such a caller
-- never acts as a user: no owner policy or RPC applies to it.
create or replace function public.liveparams_claims_trainer()
returns boolean
language sql
stable
set search_path = ''
as $$
  select coalesce(auth.jwt() -> 'app_metadata' ? 'liveparams_job_id', false)
      or coalesce(auth.jwt() ? 'job_id', false)
$$;

-- The job the caller's trainer credential may read and record on; NULL for anyone else,
-- and for a credential that was revoked or whose job-token cut-off covers it. Each branch is
-- one index lookup (auth_user_id is unique, id the primary key), whatever the number of jobs.
create or replace function public.liveparams_trainer_job_id()
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select c.job_id
    from public.trainer_credentials c
   where c.revoked_at is null
     and c.auth_user_id = auth.uid()
     and c.id::text = auth.jwt() -> 'app_metadata' ->> 'liveparams_credential_id'
     and c.job_id::text = auth.jwt() -> 'app_metadata' ->> 'liveparams_job_id'
  union all
  select j.id
    from public.local_training_jobs j
   where j.id = case when auth.jwt() ->> 'job_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                     then (auth.jwt() ->> 'job_id')::uuid end  -- a primary-key lookup; a claim that is no uuid matches nothing
     and auth.jwt() ->> 'sub' is null
     and auth.jwt() ->> 'iss' = 'liveparams'
     and (j.job_tokens_revoked_at is null
          or (jsonb_typeof(auth.jwt() -> 'iat') = 'number'
              and (auth.jwt() ->> 'iat')::numeric > floor(extract(epoch from j.job_tokens_revoked_at))))
  limit 1
$$;

-- Revokes the trainer credentials of a job (service_role only): one session when
-- p_credential_id is given, else every session and every job token issued so far.
-- Returns the revoked sessions, [{"credential_id", "auth_user_id"}], for the caller to delete
-- their Auth users (their refresh tokens then stop working too).
create or replace function public.liveparams_revoke_trainer_credentials(p_job_id uuid, p_credential_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_revoked jsonb;
begin
  if not exists (select 1 from public.local_training_jobs where id = p_job_id) then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
  if p_credential_id is null then
    update public.local_training_jobs set job_tokens_revoked_at = now() where id = p_job_id;
  elsif not exists (select 1 from public.trainer_credentials c where c.id = p_credential_id and c.job_id = p_job_id) then
    raise exception 'training job % has no credential %', p_job_id, p_credential_id using errcode = 'PT404';
  end if;
  with revoked as (
    update public.trainer_credentials c set revoked_at = now()
     where c.job_id = p_job_id and c.revoked_at is null
       and (p_credential_id is null or c.id = p_credential_id)
    returning c.id, c.auth_user_id
  )
  select coalesce(jsonb_agg(jsonb_build_object('credential_id', r.id, 'auth_user_id', r.auth_user_id)), '[]'::jsonb)
    into v_revoked from revoked r;
  return v_revoked;
end;
$$;

-- Outcomes: as before, but the caller must be a live trainer credential of the job.
create or replace function public.record_parameter_update_outcomes(
  p_job_id uuid,
  p_outcomes jsonb
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
  v_recorded text[] := array[]::text[];
  v_key text;
  v_outcome jsonb;
  v_in_force record;
begin
  if p_outcomes is null or jsonb_typeof(p_outcomes) <> 'object' then
    raise exception 'outcomes must be a JSON object keyed by request id' using errcode = '22023';
  end if;
  if not v_is_service and public.liveparams_trainer_job_id() is distinct from p_job_id then
    raise exception 'this token may not record outcomes for training job % (not its trainer credential, or revoked)',
      p_job_id using errcode = '42501';
  end if;
  perform 1 from public.local_training_jobs where id = p_job_id for update;
  if not found then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;

  -- One primary-key lookup per outcome, whatever the job's history (no join the planner could turn into a scan).
  for v_key, v_outcome in select * from jsonb_each(p_outcomes) loop
    perform 1 from public.parameter_update_requests where job_id = p_job_id and id = v_key;
    if not found then
      raise exception 'no request with id % on training job %', v_key, p_job_id using errcode = '22023';
    end if;
    if public.liveparams_store_outcome(p_job_id, v_key, v_outcome) then
      v_recorded := array_append(v_recorded, v_key);
    end if;
  end loop;

  if cardinality(v_recorded) > 0 then
    select f.params, f.step into v_in_force from public.liveparams_in_force_from_ids(p_job_id, v_recorded) f;
    if v_in_force.step is not null then  -- something applied changed a setting
      update public.local_training_jobs j
         set parameters_in_force = j.parameters_in_force || v_in_force.params,
             parameters_applied_step = greatest(j.parameters_applied_step, v_in_force.step),
             parameters_applied_at = now()
       where j.id = p_job_id;
    end if;
  end if;
  return jsonb_build_object('recorded', to_jsonb(v_recorded));
end;
$$;

-- The trainer's attachment: as before, but the caller must be a live trainer credential of the job.
create or replace function public.record_trainer_state(
  p_job_id uuid,
  p_state text,
  p_step integer default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
begin
  if not v_is_service and public.liveparams_trainer_job_id() is distinct from p_job_id then
    raise exception 'this token may not report the trainer of training job % (not its trainer credential, or revoked)',
      p_job_id using errcode = '42501';
  end if;
  if p_state is null or p_state not in ('attached', 'alive', 'completed', 'stopped', 'crashed', 'closed') then
    raise exception 'trainer state must be attached, alive, completed, stopped, crashed or closed, got %', p_state
      using errcode = '22023';
  end if;
  update public.local_training_jobs
     set trainer_attached_at = case when p_state = 'attached' then now() else trainer_attached_at end,
         trainer_seen_at = now(),
         trainer_detached_at = case when p_state in ('attached', 'alive') then null else now() end,
         trainer_detach_reason = case when p_state in ('attached', 'alive') then null else p_state end,
         trainer_detach_step = case when p_state in ('attached', 'alive') then null else p_step end
   where id = p_job_id
     and (p_state <> 'alive' or trainer_detached_at is null);
  if not found and not exists (select 1 from public.local_training_jobs where id = p_job_id) then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
end;
$$;

-- A backend adopts an ownerless job for a user (service_role only); never from an owner, never
-- for a trainer's Auth user (it must not act as an owner).
create or replace function public.liveparams_adopt_job(p_job_id uuid, p_user_id uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from public.trainer_credentials where auth_user_id = p_user_id) then
    raise exception 'user % is a trainer credential and cannot own jobs', p_user_id using errcode = '22023';
  end if;
  update public.local_training_jobs set user_id = p_user_id
   where id = p_job_id and user_id is null and p_user_id is not null;
  return found;
end;
$$;

revoke all on function public.liveparams_revoke_trainer_credentials(uuid, uuid) from public, anon, authenticated;
grant execute on function public.liveparams_revoke_trainer_credentials(uuid, uuid) to service_role;
revoke all on function public.liveparams_trainer_job_id() from public;
revoke all on function public.liveparams_claims_trainer() from public;
grant execute on function public.liveparams_trainer_job_id() to anon, authenticated, service_role;
grant execute on function public.liveparams_claims_trainer() to anon, authenticated, service_role;

alter table public.trainer_credentials enable row level security;
revoke all on table public.trainer_credentials from anon, authenticated;
grant all on table public.trainer_credentials to service_role;

-- Row Level Security: a trainer credential reads its one job, and its requests, while it is live.
drop policy if exists "job token reads its job" on public.local_training_jobs;
drop policy if exists "trainer reads its job" on public.local_training_jobs;
create policy "trainer reads its job" on public.local_training_jobs
  for select to authenticated
  using (id = (select public.liveparams_trainer_job_id()));

drop policy if exists "job token reads its job's requests" on public.parameter_update_requests;
drop policy if exists "trainer reads its job's requests" on public.parameter_update_requests;
create policy "trainer reads its job's requests" on public.parameter_update_requests
  for select to authenticated
  using (job_id = (select public.liveparams_trainer_job_id()));

-- ...and nothing else: whatever the permissive (owner) policies say, a caller presenting a
-- trainer credential reaches at most its one job, and never creates, changes or deletes a job.
drop policy if exists "a trainer reaches its job only" on public.local_training_jobs;
create policy "a trainer reaches its job only" on public.local_training_jobs
  as restrictive for all to authenticated
  using (not (select public.liveparams_claims_trainer()) or id = (select public.liveparams_trainer_job_id()))
  with check (not (select public.liveparams_claims_trainer()));

drop policy if exists "a trainer reaches its job's requests only" on public.parameter_update_requests;
create policy "a trainer reaches its job's requests only" on public.parameter_update_requests
  as restrictive for all to authenticated
  using (not (select public.liveparams_claims_trainer()) or job_id = (select public.liveparams_trainer_job_id()))
  with check (not (select public.liveparams_claims_trainer()));

-- The seed's writers: an element of the array that is SQL NULL (a JSON null in a PostgREST
-- write) is kept as a JSON null request, which the agent rejects with a reason, instead of
-- failing the writer's whole update on the requests table's not-null params.
create or replace function public.liveparams_move_legacy_appends()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if cardinality(new.parameter_updates) > 0 then
    if tg_op = 'INSERT' then  -- the row must exist before its requests can point at it
      update public.local_training_jobs set parameter_updates = new.parameter_updates where id = new.id;
      return null;
    end if;
    perform public.liveparams_move_entries(
      new.id, array(select coalesce(e, 'null'::jsonb) from unnest(new.parameter_updates) with ordinality u (e, i)
                    order by i), null);
    new.parameter_updates := '{}';
    new.last_parameter_update_at := now();
  end if;
  return new;
end;
$$;

revoke all on function public.liveparams_move_legacy_appends() from public, anon, authenticated;
