-- liveparams: live hyperparameter updates for training jobs.
--
-- Written to apply unchanged on a hosted Supabase project that already has the
-- seed design's `local_training_jobs` table (parameter_updates jsonb[],
-- last_parameter_update_at timestamptz), and on a fresh database.
--
-- Shape of the row, as a UI or a trainer sees it:
--   parameter_updates          jsonb[]  append-only requests, each stamped with
--                                       {id, requested_at, requested_by}
--   parameter_update_outcomes  jsonb    {"<request id>": {status, step, at, changes|reason}}
--                                       written by the trainer; first record wins
-- Requests go in through request_parameter_update(); outcomes through
-- record_parameter_update_outcomes(). Neither column is writable directly by
-- owners or job tokens, so the history cannot be rewritten from a browser.

create table if not exists public.local_training_jobs (
  id uuid primary key default gen_random_uuid(),
  parameter_updates jsonb[] not null default '{}',
  last_parameter_update_at timestamptz
);

alter table public.local_training_jobs
  add column if not exists user_id uuid references auth.users (id) on delete cascade default auth.uid(),
  add column if not exists name text,
  add column if not exists status text not null default 'pending',
  add column if not exists parameter_update_outcomes jsonb not null default '{}'::jsonb,
  add column if not exists created_at timestamptz not null default now(),
  add column if not exists updated_at timestamptz not null default now();

do $$
begin
  if not exists (
    select 1 from pg_constraint where conname = 'local_training_jobs_status_check'
  ) then
    alter table public.local_training_jobs
      add constraint local_training_jobs_status_check
      check (status in ('pending', 'queued', 'running', 'completed', 'failed', 'cancelled'));
  end if;
end;
$$;

create index if not exists local_training_jobs_user_id_idx on public.local_training_jobs (user_id);

comment on column public.local_training_jobs.parameter_updates is
  'Append-only parameter update requests. Write through request_parameter_update().';
comment on column public.local_training_jobs.parameter_update_outcomes is
  'Outcome per request id: applied (step, at, changes old->new), rejected (reason) or superseded. Write through record_parameter_update_outcomes().';

-- The parameters a request may carry, with the bounds the database enforces.
-- The trainer-side registry (agent/_parameters.py) is checked against this
-- function by the test suite, so the two cannot drift apart silently.
create or replace function public.liveparams_parameter_spec()
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select '{
    "learning_rate":   {"type": "number",  "min": 0, "min_exclusive": true, "max": 1},
    "learning_rate_mode": {"type": "string", "choices": ["rescale", "constant"]},
    "weight_decay":    {"type": "number",  "min": 0, "max": 10},
    "max_grad_norm":   {"type": "number",  "min": 0, "max": 1000000},
    "warmup_steps":    {"type": "integer", "min": 0, "max": 100000000},
    "max_steps":       {"type": "integer", "min": 1, "max": 100000000},
    "logging_steps":   {"type": "integer", "min": 1, "max": 100000000},
    "eval_steps":      {"type": "integer", "min": 1, "max": 100000000},
    "save_steps":      {"type": "integer", "min": 1, "max": 100000000},
    "beta":            {"type": "number",  "min": 0, "max": 1000},
    "command":         {"type": "string",  "choices": ["save_checkpoint", "evaluate", "stop"]},
    "per_device_train_batch_size": {"type": "integer", "restart_only": true},
    "gradient_accumulation_steps": {"type": "integer", "restart_only": true},
    "num_generations": {"type": "integer", "restart_only": true},
    "max_completion_length": {"type": "integer", "restart_only": true}
  }'::jsonb
$$;

-- Errors and the HTTP status PostgREST gives them: 22023/22003 (bad input) 400;
-- 42501 (token may not) 401/403; PT404 (no such job, or not yours) 404; PT409
-- (job not running) 409; PT413 (request too large) 413. PostgREST maps PTxyz
-- to status xyz; P0002/55000/54000 would all have been 500, which clients
-- take for a server fault worth retrying.

-- Appends one request atomically (a single UPDATE, so concurrent appends are
-- never lost), stamped with id/requested_at/requested_by from the caller's JWT.
-- p_request_id makes a retried call idempotent: the same id is stored once.
create or replace function public.request_parameter_update(
  p_job_id uuid,
  p_params jsonb,
  p_request_id uuid default null
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job public.local_training_jobs%rowtype;
  v_spec jsonb := public.liveparams_parameter_spec();
  v_key text;
  v_value jsonb;
  v_rule jsonb;
  v_request jsonb;
  v_existing jsonb;
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
begin
  if p_params is null or jsonb_typeof(p_params) <> 'object' then
    raise exception 'parameters must be a JSON object such as {"learning_rate": 5e-05}'
      using errcode = '22023';
  end if;
  if length(p_params::text) > 4096 then
    raise exception 'request is % bytes; the limit is 4096', length(p_params::text)
      using errcode = 'PT413';
  end if;
  if not exists (select 1 from jsonb_object_keys(p_params)) then
    raise exception 'request names no parameter' using errcode = '22023';
  end if;

  select * into v_job from public.local_training_jobs where id = p_job_id for update;
  if not found or (not v_is_service and v_job.user_id is distinct from auth.uid()) then
    -- Same message for "missing" and "not yours": existence is not leaked.
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
  if v_job.status <> 'running' then
    raise exception 'training job % is %, not running; updates are only accepted while it runs',
      p_job_id, v_job.status using errcode = 'PT409';
  end if;

  for v_key, v_value in select * from jsonb_each(p_params) loop
    v_rule := v_spec -> v_key;
    if v_key in ('id', 'requested_at', 'requested_by') then
      raise exception '"%" is set by the server and cannot be given', v_key using errcode = '22023';
    end if;
    if v_rule is null then
      raise exception 'unknown parameter "%"; known parameters: %', v_key,
        (select string_agg(k, ', ' order by k) from jsonb_object_keys(v_spec) k)
        using errcode = '22023';
    end if;
    if coalesce((v_rule ->> 'restart_only')::boolean, false) then
      raise exception '"%" cannot change while training runs (it needs a restart)', v_key
        using errcode = '22023';
    end if;
    if v_rule ->> 'type' in ('number', 'integer') then
      if jsonb_typeof(v_value) <> 'number' then
        raise exception '"%" must be a number, got %', v_key, v_value using errcode = '22023';
      end if;
      if v_rule ->> 'type' = 'integer' and (v_value::text)::numeric <> trunc((v_value::text)::numeric) then
        raise exception '"%" must be a whole number, got %', v_key, v_value using errcode = '22023';
      end if;
      if (v_value::text)::numeric < (v_rule ->> 'min')::numeric
         or (coalesce((v_rule ->> 'min_exclusive')::boolean, false)
             and (v_value::text)::numeric = (v_rule ->> 'min')::numeric)
         or (v_value::text)::numeric > (v_rule ->> 'max')::numeric then
        raise exception '"%" = % is out of range (% % .. %)', v_key, v_value,
          case when coalesce((v_rule ->> 'min_exclusive')::boolean, false) then '>' else '>=' end,
          v_rule ->> 'min', v_rule ->> 'max'
          using errcode = '22003';
      end if;
    elsif v_rule ->> 'type' = 'string' then
      if jsonb_typeof(v_value) <> 'string' or not (v_rule -> 'choices') ? (v_value #>> '{}') then
        raise exception '"%" must be one of %, got %', v_key, v_rule -> 'choices', v_value
          using errcode = '22023';
      end if;
    end if;
  end loop;

  if p_request_id is not null then
    select u into v_existing from unnest(v_job.parameter_updates) u where u ->> 'id' = p_request_id::text;
    if v_existing is not null then
      return v_existing;
    end if;
  end if;

  v_request := p_params || jsonb_build_object(
    'id', coalesce(p_request_id, gen_random_uuid()),
    'requested_at', to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'requested_by', coalesce(auth.uid()::text, auth.role())
  );

  update public.local_training_jobs
     set parameter_updates = array_append(parameter_updates, v_request),
         last_parameter_update_at = now(),
         updated_at = now()
   where id = p_job_id;

  return v_request;
end;
$$;

-- Records outcomes reported by the trainer. Keys are request ids that must
-- exist on the row (or legacy keys, below); the first outcome recorded for a request wins, so retries
-- and replays are harmless.
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
  v_job public.local_training_jobs%rowtype;
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
  v_unknown text;
begin
  if p_outcomes is null or jsonb_typeof(p_outcomes) <> 'object' then
    raise exception 'outcomes must be a JSON object keyed by request id' using errcode = '22023';
  end if;
  if not v_is_service and coalesce(auth.jwt() ->> 'job_id', '') <> p_job_id::text then
    raise exception 'this token may not record outcomes for training job %', p_job_id
      using errcode = '42501';
  end if;

  select * into v_job from public.local_training_jobs where id = p_job_id for update;
  if not found then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;

  -- Entries written before ids were stamped (the seed design) are identified
  -- by the trainer as legacy-<16 hex digits of a content hash>; those keys are
  -- accepted while the row holds such entries.
  select k into v_unknown
    from jsonb_object_keys(p_outcomes) k
   where not exists (select 1 from unnest(v_job.parameter_updates) u where u ->> 'id' = k)
     and not (k ~ '^legacy-[0-9a-f]{16}$'
              and exists (select 1 from unnest(v_job.parameter_updates) u where u ->> 'id' is null))
   limit 1;
  if v_unknown is not null then
    raise exception 'no request with id % on training job %', v_unknown, p_job_id using errcode = '22023';
  end if;

  update public.local_training_jobs
     set parameter_update_outcomes = p_outcomes || parameter_update_outcomes,
         updated_at = now()
   where id = p_job_id;

  return (select parameter_update_outcomes from public.local_training_jobs where id = p_job_id);
end;
$$;

revoke all on function public.request_parameter_update(uuid, jsonb, uuid) from public, anon;
revoke all on function public.record_parameter_update_outcomes(uuid, jsonb) from public, anon;
grant execute on function public.request_parameter_update(uuid, jsonb, uuid) to authenticated, service_role;
grant execute on function public.record_parameter_update_outcomes(uuid, jsonb) to authenticated, service_role;
grant execute on function public.liveparams_parameter_spec() to anon, authenticated, service_role;

-- Row Level Security. Owners see and create their own jobs; a job-scoped token
-- (an `authenticated` JWT with a `job_id` claim and no `sub`) sees its one job.
alter table public.local_training_jobs enable row level security;

-- Supabase's default privileges grant ALL on new public tables to anon and
-- authenticated; take them back first, or owners could rewrite the history.
revoke all on table public.local_training_jobs from anon, authenticated;
grant select, delete on table public.local_training_jobs to authenticated;
grant insert (id, user_id, name, status) on table public.local_training_jobs to authenticated;
grant update (name, status) on table public.local_training_jobs to authenticated;
grant all on table public.local_training_jobs to service_role;

drop policy if exists "owners read their jobs" on public.local_training_jobs;
create policy "owners read their jobs" on public.local_training_jobs
  for select to authenticated
  using (user_id = (select auth.uid()));

drop policy if exists "job token reads its job" on public.local_training_jobs;
create policy "job token reads its job" on public.local_training_jobs
  for select to authenticated
  using (id::text = (select auth.jwt() ->> 'job_id'));

drop policy if exists "owners create their jobs" on public.local_training_jobs;
create policy "owners create their jobs" on public.local_training_jobs
  for insert to authenticated
  with check (user_id = (select auth.uid()));

drop policy if exists "owners update their jobs" on public.local_training_jobs;
create policy "owners update their jobs" on public.local_training_jobs
  for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

drop policy if exists "owners delete their jobs" on public.local_training_jobs;
create policy "owners delete their jobs" on public.local_training_jobs
  for delete to authenticated
  using (user_id = (select auth.uid()));

-- Realtime sees only tables in this publication.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  if not exists (
    select 1 from pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'local_training_jobs'
  ) then
    alter publication supabase_realtime add table public.local_training_jobs;
  end if;
end;
$$;
