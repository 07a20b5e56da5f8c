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

