-- liveparams: one row per parameter update request, and a bounded job row.
--
-- Before: every request and every outcome lived in two ever-growing columns of
-- the job row (parameter_updates jsonb[], parameter_update_outcomes jsonb), so
-- the cost of each new request (Realtime bytes, RPC time, WAL) grew with the
-- job's history. After:
--
--   parameter_update_requests   one row per request: (job_id, id) identifies it,
--                               seq orders it on its job (1, 2, 3, ... strictly
--                               increasing), and its outcome is written onto it
--                               once (status, step, changes | reason, decided_at).
--   local_training_jobs         keeps only what a UI needs at a glance: the values
--                               in force (as last applied, with the step) and the
--                               trainer's attachment (attached / seen / detached how
--                               and at which step). Realtime Presence on the topic
--                               "liveparams-job-<id>" says who is attached right now.
--
-- Applying this migration moves every existing array entry and outcome into the
-- new table (nothing is lost; what was decided stays decided) and empties the
-- array. The seed's writers keep working: anything appended to
-- local_training_jobs.parameter_updates is moved into the new table by a trigger,
-- so the column stays empty. Re-running this file is harmless.
--
-- Interplay with the platform's own `status` column: liveparams never writes it.
-- `status` is the platform's view of the job (queued, running, completed, ...);
-- the trainer_* columns are the trainer's own account of whether it is attached.
-- Requests are accepted only while status = 'running', whether or not a trainer
-- is attached yet (they are applied when it attaches).

create table if not exists public.parameter_update_requests (
  job_id uuid not null references public.local_training_jobs (id) on delete cascade,
  id text not null,
  seq bigint not null,
  params jsonb not null,
  requested_at timestamptz default now(),
  requested_by text,
  status text,
  step integer,
  changes jsonb,
  reason text,
  superseded_by text,
  decided_at timestamptz,
  primary key (job_id, id),
  unique (job_id, seq),
  constraint parameter_update_requests_status_check
    check (status in ('applied', 'rejected', 'superseded', 'failed'))
);

-- Undecided requests of a job: what an agent reads on start, and what the flood guard counts.
create index if not exists parameter_update_requests_pending_idx
  on public.parameter_update_requests (job_id, seq) where status is null;

comment on table public.parameter_update_requests is
  'One row per parameter update request. Insert through request_parameter_update(); outcomes through record_parameter_update_outcomes().';
comment on column public.parameter_update_requests.seq is
  'Order of the request on its job: 1, 2, 3, ... in commit order. Agents re-read only seq > the last they saw.';
comment on column public.parameter_update_requests.status is
  'null while undecided; then applied, rejected, superseded or failed (first outcome recorded wins).';

alter table public.local_training_jobs
  add column if not exists parameters_in_force jsonb not null default '{}'::jsonb,
  add column if not exists parameters_applied_step integer,
  add column if not exists parameters_applied_at timestamptz,
  add column if not exists trainer_attached_at timestamptz,
  add column if not exists trainer_seen_at timestamptz,
  add column if not exists trainer_detached_at timestamptz,
  add column if not exists trainer_detach_reason text,
  add column if not exists trainer_detach_step integer;

do $$
begin
  if not exists (select 1 from pg_constraint where conname = 'local_training_jobs_trainer_detach_reason_check') then
    alter table public.local_training_jobs
      add constraint local_training_jobs_trainer_detach_reason_check
      check (trainer_detach_reason in ('completed', 'stopped', 'crashed', 'closed'));
  end if;
end;
$$;

comment on column public.local_training_jobs.parameters_in_force is
  'Values now in force, as last applied by the trainer: {"learning_rate": 5e-05, ...}. Step in parameters_applied_step.';
comment on column public.local_training_jobs.trainer_seen_at is
  'Last heartbeat of the attached trainer. Attached = trainer_attached_at set, trainer_detached_at null and this recent (docs/contracts.md).';
comment on column public.local_training_jobs.trainer_detach_reason is
  'How the trainer detached: completed, stopped (by request), crashed, or closed (the process closed the agent without saying why). A killed process leaves it null and stops the heartbeat.';
comment on column public.local_training_jobs.parameter_updates is
  'Legacy (seed design) request array: anything appended here is moved into parameter_update_requests by a trigger; the column stays empty.';

-- Limits, defined once here; the agent's defaults are checked against them by the test suite.
create or replace function public.liveparams_max_request_bytes()
returns integer
language sql
immutable
set search_path = ''
as $$ select 4096 $$;

create or replace function public.liveparams_max_pending_requests()
returns integer
language sql
immutable
set search_path = ''
as $$ select 1000 $$;

-- Compact JSON with sorted keys, byte for byte what Python's
-- json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) gives
-- for the value PostgREST would have returned (numbers with a decimal point are
-- floats there, printed as Python's repr). Used only to compute the
-- "legacy-<hash>" ids of entries written without an id (see docs/internals.md).
create or replace function public.liveparams_canonical_json(p_value jsonb)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_text text;
  v_digits text;
begin
  case jsonb_typeof(p_value)
    when 'object' then
      return '{' || coalesce((select string_agg(to_json(k)::text || ':' || public.liveparams_canonical_json(v), ','
                                                order by k collate "C")
                                from jsonb_each(p_value) e(k, v)), '') || '}';
    when 'array' then
      return '[' || coalesce((select string_agg(public.liveparams_canonical_json(v), ',' order by i)
                                from jsonb_array_elements(p_value) with ordinality a(v, i)), '') || ']';
    when 'number' then
      v_text := p_value::text;
      if position('.' in v_text) = 0 then
        return v_text;  -- an integer in Python
      end if;
      v_text := (v_text::float8)::text;  -- shortest round-trip digits, as Python's repr
      if v_text ~ 'e\+15$' then  -- Python switches to exponents at 1e16, PostgreSQL at 1e15
        v_digits := replace(replace(split_part(v_text, 'e', 1), '-', ''), '.', '');
        return case when v_text like '-%' then '-' else '' end || rpad(v_digits, 16, '0') || '.0';
      end if;
      if v_text !~ '[.e]' then
        return v_text || '.0';
      end if;
      return v_text;
    else
      return p_value::text;  -- strings (same escapes), true, false, null
  end case;
end;
$$;

create or replace function public.liveparams_legacy_request_id(p_entry jsonb)
returns text
language sql
immutable
set search_path = ''
as $$
  select 'legacy-' || left(encode(sha256(convert_to(public.liveparams_canonical_json(p_entry), 'UTF8')), 'hex'), 16)
$$;

-- Moves request entries of the old shape into parameter_update_requests, with
-- their outcomes when given. The migration passes the whole array and outcome
-- map of each job; the legacy trigger passes what a seed writer appended. An
-- entry already moved (same id) is skipped, so a writer that re-sends the whole
-- array it read earlier adds only what is new. Entries are stored as they are:
-- the agent validates them and records a rejection for anything malformed.
create or replace function public.liveparams_move_entries(p_job_id uuid, p_entries jsonb[], p_outcomes jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_entry jsonb;
  v_id text;
  v_params jsonb;
  v_requested_at timestamptz;
  v_outcome jsonb;
  v_seq bigint := coalesce((select max(seq) from public.parameter_update_requests where job_id = p_job_id), 0);
  v_key text;
begin
  for v_entry in select e from unnest(p_entries) e loop
    if jsonb_typeof(v_entry) = 'string' then  -- JSON text of an object: read what it encodes
      begin
        v_entry := (v_entry #>> '{}')::jsonb;
      exception when others then
        null;
      end;
    end if;
    if jsonb_typeof(v_entry) = 'object' and jsonb_typeof(v_entry -> 'id') = 'string' and v_entry ->> 'id' <> '' then
      v_id := v_entry ->> 'id';
      v_params := v_entry - 'id' - 'requested_at' - 'requested_by';
    else
      v_id := public.liveparams_legacy_request_id(v_entry);
      v_params := case when jsonb_typeof(v_entry) = 'object'
                       then v_entry - 'requested_at' - 'requested_by' else v_entry end;
    end if;
    v_requested_at := null;
    if jsonb_typeof(v_entry) = 'object' then
      begin
        v_requested_at := (v_entry ->> 'requested_at')::timestamptz;
      exception when others then
        null;
      end;
    end if;
    v_seq := v_seq + 1;
    insert into public.parameter_update_requests (job_id, id, seq, params, requested_at, requested_by)
    values (p_job_id, v_id, v_seq, v_params, v_requested_at,
            case when jsonb_typeof(v_entry -> 'requested_by') = 'string' then v_entry ->> 'requested_by' end)
    on conflict (job_id, id) do nothing;
    if not found then
      v_seq := v_seq - 1;
    end if;
  end loop;

  -- Outcomes, including any whose request is not in the array (kept, so nothing is lost).
  for v_key, v_outcome in select * from jsonb_each(coalesce(p_outcomes, '{}'::jsonb)) loop
    if not exists (select 1 from public.parameter_update_requests where job_id = p_job_id and id = v_key) then
      v_seq := v_seq + 1;
      insert into public.parameter_update_requests (job_id, id, seq, params, requested_at)
      values (p_job_id, v_key, v_seq, '{}'::jsonb, null);
    end if;
    perform public.liveparams_store_outcome(p_job_id, v_key, v_outcome);
  end loop;
end;
$$;

-- Writes one outcome (the shape of UpdateOutcome.to_row()) onto its request if
-- it is still undecided; returns whether it did. An outcome that does not fit
-- the columns (written by hand into the old map) is kept as `failed` with the
-- original in `reason`, so that it stays decided.
create or replace function public.liveparams_store_outcome(p_job_id uuid, p_id text, p_outcome jsonb)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_status text := p_outcome ->> 'status';
  v_valid boolean := jsonb_typeof(p_outcome) = 'object'
                     and v_status in ('applied', 'rejected', 'superseded', 'failed')
                     and coalesce(jsonb_typeof(p_outcome -> 'step') in ('number', 'null'), true)
                     and coalesce(jsonb_typeof(p_outcome -> 'changes') in ('object', 'null'), true);
  v_at timestamptz;
begin
  begin
    v_at := (p_outcome ->> 'at')::timestamptz;
  exception when others then
    v_at := null;
  end;
  update public.parameter_update_requests
     set status = case when v_valid then v_status else 'failed' end,
         step = case when v_valid and jsonb_typeof(p_outcome -> 'step') = 'number'
                     then trunc((p_outcome ->> 'step')::numeric)::integer end,
         changes = case when v_valid then p_outcome -> 'changes' end,
         reason = case when v_valid then p_outcome ->> 'reason'
                       else 'outcome recorded before the upgrade: ' || p_outcome::text end,
         superseded_by = case when v_valid then p_outcome ->> 'superseded_by' end,
         decided_at = coalesce(v_at, now())
   where job_id = p_job_id and id = p_id and status is null;
  return found;
end;
$$;

-- The values in force after the applied requests among p_ids (what record_parameter_update_outcomes()
-- adds to the job row; the migration below passes every request of a job once).
create or replace function public.liveparams_in_force_from_ids(p_job_id uuid, p_ids text[])
returns table (params jsonb, step integer)
language sql
stable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(c.key, c.value -> 'new' order by r.seq), '{}'::jsonb), max(r.step)
    from public.parameter_update_requests r
   cross join lateral jsonb_each(coalesce(r.changes, '{}'::jsonb)) c
   where r.job_id = p_job_id and r.id = any (p_ids) and r.status = 'applied' and c.key <> 'command'
$$;

-- Move what is on existing rows. The trigger is dropped first, so the array can be emptied here.
drop trigger if exists liveparams_move_legacy_appends on public.local_training_jobs;
drop trigger if exists liveparams_move_legacy_inserts on public.local_training_jobs;

do $$
declare
  v_job record;
  v_has_outcomes boolean := exists (
    select 1 from information_schema.columns
     where table_schema = 'public' and table_name = 'local_training_jobs' and column_name = 'parameter_update_outcomes');
  v_outcomes jsonb;
begin
  for v_job in select id, parameter_updates from public.local_training_jobs for update loop
    if v_has_outcomes then
      execute 'select parameter_update_outcomes from public.local_training_jobs where id = $1' into v_outcomes using v_job.id;
    end if;
    perform public.liveparams_move_entries(v_job.id, v_job.parameter_updates, coalesce(v_outcomes, '{}'::jsonb));
    update public.local_training_jobs j
       set parameter_updates = '{}',
           parameters_in_force = j.parameters_in_force || f.params,
           parameters_applied_step = coalesce(f.step, j.parameters_applied_step)
      from public.liveparams_in_force_from_ids(
             v_job.id, array(select r.id from public.parameter_update_requests r where r.job_id = v_job.id)) f
     where j.id = v_job.id;
  end loop;
end;
$$;

alter table public.local_training_jobs drop column if exists parameter_update_outcomes;

-- The seed's writers: what they append is moved, and the array stays empty. An element that
-- is SQL NULL (a JSON null in a PostgREST write) is kept as a JSON null request, which the agent
-- rejects with a reason, instead of failing the writer's whole update.
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

create trigger liveparams_move_legacy_appends
  before update of parameter_updates on public.local_training_jobs
  for each row execute function public.liveparams_move_legacy_appends();
create trigger liveparams_move_legacy_inserts
  after insert on public.local_training_jobs
  for each row when (cardinality(new.parameter_updates) > 0)
  execute function public.liveparams_move_legacy_appends();

-- Errors: as before, plus PT429 (too many undecided requests on the job) -> HTTP 429.
-- Ownership is never matched through NULL: a job without an owner is nobody's
-- (service_role only) until a backend adopts it with liveparams_adopt_job().
drop function if exists public.request_parameter_update(uuid, jsonb, uuid);
create function public.request_parameter_update(
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
  v_row public.parameter_update_requests%rowtype;
  v_pending integer;
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
begin
  if p_params is null or jsonb_typeof(p_params) <> 'object' then
    raise exception 'parameters must be a JSON object such as {"learning_rate": 5e-05}'
      using errcode = '22023';
  end if;
  if octet_length(p_params::text) > public.liveparams_max_request_bytes() then
    raise exception 'request is % bytes; the limit is %', octet_length(p_params::text),
      public.liveparams_max_request_bytes() using errcode = 'PT413';
  end if;
  if not exists (select 1 from jsonb_object_keys(p_params)) then
    raise exception 'request names no parameter' using errcode = '22023';
  end if;

  -- FOR UPDATE serialises the requests of one job, so seq follows commit order.
  select * into v_job from public.local_training_jobs where id = p_job_id for update;
  if not found or not (v_is_service or coalesce(v_job.user_id = auth.uid(), false)) then
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
    select * into v_row from public.parameter_update_requests where job_id = p_job_id and id = p_request_id::text;
    if found then
      return public.liveparams_request_json(v_row);
    end if;
  end if;

  -- Flood guard: a job holds at most liveparams_max_pending_requests() undecided requests.
  select count(*) into v_pending from (
    select 1 from public.parameter_update_requests
     where job_id = p_job_id and status is null
     limit public.liveparams_max_pending_requests()
  ) p;
  if v_pending >= public.liveparams_max_pending_requests() then
    raise exception 'training job % already has % requests the trainer has not decided yet; try again once it catches up',
      p_job_id, v_pending using errcode = 'PT429';
  end if;

  insert into public.parameter_update_requests (job_id, id, seq, params, requested_at, requested_by)
  values (
    p_job_id,
    coalesce(p_request_id, gen_random_uuid())::text,
    coalesce((select max(seq) from public.parameter_update_requests where job_id = p_job_id), 0) + 1,
    p_params,
    now(),
    coalesce(auth.uid()::text, auth.role())
  )
  returning * into v_row;

  update public.local_training_jobs set last_parameter_update_at = now() where id = p_job_id;
  return public.liveparams_request_json(v_row);
end;
$$;

-- A stored request as the RPC returns it: its parameters with id, seq, requested_at and requested_by.
create or replace function public.liveparams_request_json(p_row public.parameter_update_requests)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select p_row.params || jsonb_build_object(
    'id', p_row.id, 'seq', p_row.seq, 'requested_at', p_row.requested_at, 'requested_by', p_row.requested_by)
$$;

-- The job the caller may act on as its trainer, or NULL: here a job token's `job_id` claim
-- (20261128140000_trainer_credentials.sql redefines it for trainer sessions and revocation).
-- The RPCs below ask this one function, so a change of what a trainer is changes nothing else.
create or replace function public.liveparams_trainer_job_id()
returns uuid
language sql
stable
set search_path = ''
as $$
  select case when auth.jwt() ->> 'job_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then (auth.jwt() ->> 'job_id')::uuid end
$$;

-- Records outcomes reported by the trainer: {"<request id>": {status, step, at, changes|reason|superseded_by}}.
-- The first outcome recorded for a request wins, so retries and replays are harmless. Returns only
-- what this call stored ({"recorded": [ids]}), never the history. Applied changes update the job
-- row's values in force.
drop function if exists public.record_parameter_update_outcomes(uuid, jsonb);
create function public.record_parameter_update_outcomes(
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


-- What an agent reads over REST after every (re)subscription: the job's requests
-- with seq > p_after_seq, oldest first, at most p_limit. On its first read
-- (p_after_seq null) only undecided requests, plus those applied after
-- p_replay_after_step (a resume rewound them), up to the latest seq, which is
-- returned too so later reads start there. Runs as the caller: RLS decides
-- what it sees, and a job it may not see reads as null.
create or replace function public.read_parameter_update_requests(
  p_job_id uuid,
  p_after_seq bigint default null,
  p_replay_after_step integer default null,
  p_limit integer default 500
)
returns jsonb
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
  v_latest bigint;
  v_rows jsonb;
begin
  if not exists (select 1 from public.local_training_jobs where id = p_job_id) then
    return null;
  end if;
  v_latest := coalesce((select max(seq) from public.parameter_update_requests where job_id = p_job_id), 0);
  -- Each branch is a range or partial-index scan: its cost follows what it returns, not the history.
  if p_after_seq is not null then
    select jsonb_agg(to_jsonb(r) - 'job_id' order by r.seq) into v_rows
      from (select * from public.parameter_update_requests q
             where q.job_id = p_job_id and q.seq > p_after_seq and q.seq <= v_latest
             order by q.seq limit greatest(p_limit, 1)) r;
  elsif p_replay_after_step is null then
    select jsonb_agg(to_jsonb(r) - 'job_id' order by r.seq) into v_rows
      from (select * from public.parameter_update_requests q
             where q.job_id = p_job_id and q.status is null and q.seq <= v_latest
             order by q.seq limit greatest(p_limit, 1)) r;
  else  -- a resume: also what was applied after the checkpoint (reads the job's applied rows once)
    select jsonb_agg(to_jsonb(r) - 'job_id' order by r.seq) into v_rows
      from (select * from public.parameter_update_requests q
             where q.job_id = p_job_id and q.seq <= v_latest
               and (q.status is null or (q.status = 'applied' and q.step > p_replay_after_step))
             order by q.seq limit greatest(p_limit, 1)) r;
  end if;
  return jsonb_build_object('latest_seq', v_latest, 'requests', coalesce(v_rows, '[]'::jsonb));
end;
$$;

-- The trainer's attachment, reported by its agent: attached (on start), alive
-- (heartbeat), and on the way out completed | stopped | crashed | closed at a step.
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

-- Ownerless jobs (user_id null, e.g. inserted by a backend with the service key)
-- belong to nobody: no owner policy or RPC matches them. A backend adopts one for
-- a user with this function (service_role only); it never takes a job from an owner.
create or replace function public.liveparams_adopt_job(p_job_id uuid, p_user_id uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.local_training_jobs set user_id = p_user_id
   where id = p_job_id and user_id is null and p_user_id is not null;
  return found;
end;
$$;

revoke all on function public.liveparams_canonical_json(jsonb) from public, anon, authenticated;
revoke all on function public.liveparams_legacy_request_id(jsonb) from public, anon, authenticated;
revoke all on function public.liveparams_move_entries(uuid, jsonb[], jsonb) from public, anon, authenticated;
revoke all on function public.liveparams_store_outcome(uuid, text, jsonb) from public, anon, authenticated;
revoke all on function public.liveparams_in_force_from_ids(uuid, text[]) from public, anon, authenticated;
revoke all on function public.liveparams_move_legacy_appends() from public, anon, authenticated;
revoke all on function public.liveparams_request_json(public.parameter_update_requests) from public, anon, authenticated;
revoke all on function public.liveparams_adopt_job(uuid, uuid) from public, anon, authenticated;
revoke all on function public.request_parameter_update(uuid, jsonb, uuid) from public, anon;
revoke all on function public.liveparams_trainer_job_id() from public;
revoke all on function public.record_parameter_update_outcomes(uuid, jsonb) from public, anon;
revoke all on function public.read_parameter_update_requests(uuid, bigint, integer, integer) from public, anon;
revoke all on function public.record_trainer_state(uuid, text, integer) from public, anon;
grant execute on function public.liveparams_canonical_json(jsonb) to service_role;
grant execute on function public.liveparams_legacy_request_id(jsonb) to service_role;
grant execute on function public.liveparams_adopt_job(uuid, uuid) to service_role;
grant execute on function public.request_parameter_update(uuid, jsonb, uuid) to authenticated, service_role;
grant execute on function public.liveparams_trainer_job_id() to anon, authenticated, service_role;
grant execute on function public.record_parameter_update_outcomes(uuid, jsonb) to authenticated, service_role;
grant execute on function public.read_parameter_update_requests(uuid, bigint, integer, integer) to authenticated, service_role;
grant execute on function public.record_trainer_state(uuid, text, integer) to authenticated, service_role;
grant execute on function public.liveparams_max_request_bytes() to anon, authenticated, service_role;
grant execute on function public.liveparams_max_pending_requests() to anon, authenticated, service_role;

-- Row Level Security, exactly as on the job row: owners read their jobs' requests, a job token
-- reads its one job's; nobody but service_role writes them directly (only through the RPCs).
alter table public.parameter_update_requests enable row level security;
revoke all on table public.parameter_update_requests from anon, authenticated;
grant select on table public.parameter_update_requests to authenticated;
grant all on table public.parameter_update_requests to service_role;

drop policy if exists "owners read their jobs' requests" on public.parameter_update_requests;
create policy "owners read their jobs' requests" on public.parameter_update_requests
  for select to authenticated
  using (exists (select 1 from public.local_training_jobs j
                  where j.id = job_id and j.user_id = (select auth.uid())));

drop policy if exists "job token reads its job's requests" on public.parameter_update_requests;
create policy "job token reads its job's requests" on public.parameter_update_requests
  for select to authenticated
  using (job_id::text = (select auth.jwt() ->> 'job_id'));

-- Realtime: agents subscribe to INSERTs filtered on job_id=eq.<id>; UIs to all changes.
do $$
begin
  if not exists (
    select 1 from pg_publication_tables
     where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'parameter_update_requests'
  ) then
    alter publication supabase_realtime add table public.parameter_update_requests;
  end if;
end;
$$;
