-- Two holes in who a credential speaks for, found in review and closed here.
--
-- 1. A job id is never used twice. Job tokens and their revocation are tied to the job's id and
--    row: when a job was deleted and another created with the same id (users may choose the id
--    of a job they insert), a revoked job token of the old job read the new one's requests and
--    recorded outcomes on them, and a live one received them. Deleted ids are remembered, and
--    inserting one answers as for an id in use (23505, HTTP 409).
-- 2. A trainer's Auth user never owns a job. liveparams_adopt_job() recognised it by its
--    trainer_credentials row, which goes with its job; the user stays, with the job in its
--    app_metadata. It is now recognised by that too.

create table if not exists public.liveparams_deleted_job_ids (
  id uuid primary key,
  deleted_at timestamptz not null default now()
);
alter table public.liveparams_deleted_job_ids enable row level security;  -- no policy: no client reads it
revoke all on table public.liveparams_deleted_job_ids from anon, authenticated;

-- One trigger function for both ends of an id's life: a deleted id is remembered, a remembered
-- id is refused to a new job.
create or replace function public.liveparams_keep_job_ids_unique()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    insert into public.liveparams_deleted_job_ids (id) values (old.id) on conflict (id) do nothing;
    return old;
  end if;
  if exists (select 1 from public.liveparams_deleted_job_ids d where d.id = new.id) then
    raise exception 'duplicate key value violates unique constraint "local_training_jobs_pkey"'
      using errcode = '23505', detail = format('Key (id)=(%s) belonged to a deleted job; a new job needs a new id.', new.id);
  end if;
  return new;
end;
$$;
revoke all on function public.liveparams_keep_job_ids_unique() from public, anon, authenticated;

drop trigger if exists liveparams_remember_deleted_jobs on public.local_training_jobs;
create trigger liveparams_remember_deleted_jobs
  after delete on public.local_training_jobs
  for each row execute function public.liveparams_keep_job_ids_unique();
drop trigger if exists liveparams_refuse_reused_job_ids on public.local_training_jobs;
create trigger liveparams_refuse_reused_job_ids
  before insert on public.local_training_jobs
  for each row execute function public.liveparams_keep_job_ids_unique();

-- The check that needs no job: whatever the credential rows say, the user's app_metadata does.
alter function public.liveparams_adopt_job(uuid, uuid) rename to liveparams_adopt_job_for;
revoke all on function public.liveparams_adopt_job_for(uuid, uuid) from public, anon, authenticated, service_role;

create function public.liveparams_adopt_job(p_job_id uuid, p_user_id uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  if exists (select 1 from auth.users u where u.id = p_user_id and u.raw_app_meta_data ? 'liveparams_job_id') then
    raise exception 'user % is a trainer credential and cannot own jobs', p_user_id using errcode = '22023';
  end if;
  return public.liveparams_adopt_job_for(p_job_id, p_user_id);
end;
$$;

revoke all on function public.liveparams_adopt_job(uuid, uuid) from public, anon, authenticated;
grant execute on function public.liveparams_adopt_job(uuid, uuid) to service_role;
