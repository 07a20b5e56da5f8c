-- liveparams: what a trainer writes as JSON is bounded in depth and size, and its steps are >= 0.
--
-- A trainer credential (or a leaked one) wrote outcomes and restart settings as any JSON. An
-- applied outcome's `changes` nested 3,000 levels deep was stored and merged into the job row's
-- parameters_in_force, and from then on every Python client reading the row (the CLI,
-- `liveparams watch`, supabase-py, a resumed agent's replay read of the requests) failed with
-- RecursionError. Now:
--
--   outcomes   one larger than liveparams_max_outcome_bytes() (16384) as stored JSON text, nested
--              deeper than liveparams_max_json_levels() (32), or with a step outside 0 ..
--              2147483647 is stored as `failed`, with the reason, where the request was undecided,
--              as a malformed outcome always was: the request is decided, nothing of it reaches
--              parameters_in_force, and the other outcomes of the call are stored as usual.
--   restarts   record_trainer_restart refuses settings larger than liveparams_max_request_bytes()
--              (4096) or deeper than 32 levels with 22023, as it refuses a bad kind.
--
-- What the trainer writes stays far inside: an outcome (UpdateOutcome.to_row()) is 4 levels deep
-- (outcome, changes, name, old/new scalar); restart settings ({name: integer}) are 2 levels and
-- a few dozen bytes. The caps are per outcome: a call of 50 outcomes (the agent's batch) may carry
-- 50 of them.

-- How deep JSON a client must read back may nest (a scalar is level 1). Python's reader gives out
-- near 1,000 levels; 32 is far past anything liveparams writes. Before this migration the legacy
-- entries' check (20261128160000_legacy_entry_depth.sql) had it as a literal; redefined below on it.
create or replace function public.liveparams_max_json_levels()
returns integer
language sql
immutable
set search_path = ''
as $$ select 32 $$;

-- Most bytes of one outcome as stored (jsonb text). An applied outcome holds a request's values
-- (at most liveparams_max_request_bytes()) plus the value each replaced, and PostgreSQL prints a
-- number in full (5e-300 takes 300 characters): with all 19 live parameters at such values it
-- comes to about 11,000 bytes. Four requests' worth leaves that a margin; a realistic one is under 1,000.
create or replace function public.liveparams_max_outcome_bytes()
returns integer
language sql
immutable
set search_path = ''
as $$ select 4 * public.liveparams_max_request_bytes() $$;

-- Why a JSON value a trainer wrote is not stored, or null: larger than p_max_bytes as stored text,
-- or nested deeper than liveparams_max_json_levels(). The size is checked first, so the depth walk
-- only ever reads a value of at most p_max_bytes.
create or replace function public.liveparams_trainer_json_problem(p_value jsonb, p_max_bytes integer)
returns text
language sql
immutable
set search_path = ''
as $$
  select case
    when octet_length(p_value::text) > p_max_bytes
      then format('%s bytes; the limit is %s', octet_length(p_value::text), p_max_bytes)
    when public.liveparams_json_deeper_than(p_value, public.liveparams_max_json_levels())
      then format('nested more than %s levels deep, deeper than clients read back', public.liveparams_max_json_levels())
  end
$$;

-- Writes one outcome onto its request (the latest body, 20261206110000_request_runs.sql, with the
-- refusals above): while it is undecided, over `cancelled`, and over an `applied` at a later step.
-- A refused outcome is stored like a malformed one: `failed` with the reason, only where the request
-- was undecided, never over `cancelled` or `applied`; and the database log says so.
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
  v_refusal text := public.liveparams_trainer_json_problem(p_outcome, public.liveparams_max_outcome_bytes());
  v_ok boolean;
  v_step integer;
  v_at timestamptz;
begin
  if v_refusal is null and v_valid and jsonb_typeof(p_outcome -> 'step') = 'number'
     and trunc((p_outcome ->> 'step')::numeric) not between 0 and 2147483647 then
    v_refusal := format('step must be from 0 to 2147483647, got %s', p_outcome -> 'step');
  end if;
  v_ok := v_valid and v_refusal is null;
  if v_ok and jsonb_typeof(p_outcome -> 'step') = 'number' then
    v_step := trunc((p_outcome ->> 'step')::numeric)::integer;
  end if;
  begin
    v_at := (p_outcome ->> 'at')::timestamptz;
  exception when others then
    v_at := null;
  end;
  update public.parameter_update_requests
     set status = case when v_ok then v_status else 'failed' end,
         step = v_step,
         changes = case when v_ok then p_outcome -> 'changes' end,
         reason = case when v_ok then p_outcome ->> 'reason'
                       when v_refusal is not null then 'the trainer''s outcome was refused: ' || v_refusal
                       else 'outcome recorded before the upgrade: ' || p_outcome::text end,
         superseded_by = case when v_ok then p_outcome ->> 'superseded_by' end,
         decided_at = case when v_refusal is null then coalesce(v_at, now()) else now() end
   where job_id = p_job_id and id = p_id
     and (status is null
          or (v_ok and status = 'cancelled')
          or (v_ok and v_status = 'applied' and status = 'applied' and v_step < step));
  if found and v_refusal is not null then
    raise log 'liveparams: outcome of request % on training job % refused: %', p_id, p_job_id, v_refusal;
  end if;
  return found;
end;
$$;

-- The last in-process restart (the latest body, 20261207040000_restart_record.sql), now also
-- refusing settings larger or deeper than a trainer may write.
create or replace function public.record_trainer_restart(
  p_job_id uuid,
  p_kind text,
  p_step integer,
  p_from_step integer default null,
  p_settings jsonb default '{}'::jsonb,
  p_seconds double precision default null
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_problem text;
begin
  if coalesce(auth.role(), '') <> 'service_role' and public.liveparams_trainer_job_id() is distinct from p_job_id then
    raise exception 'this token may not report the trainer of training job % (not its trainer credential, or revoked)',
      p_job_id using errcode = '42501';
  end if;
  if p_kind is null or p_kind not in ('restart', 'rewind') then
    raise exception 'restart kind must be restart or rewind, got %', p_kind using errcode = '22023';
  end if;
  if p_step is null or p_step < 0 or p_from_step < p_step then
    raise exception 'restart step must be >= 0 (and a rewind''s from_step >= it), got % from %', p_step, p_from_step
      using errcode = '22023';
  end if;
  if p_seconds is null or p_seconds < 0 or p_seconds = 'Infinity'::double precision or p_seconds = 'NaN' then
    raise exception 'restart seconds must be a finite number >= 0, got %', p_seconds using errcode = '22023';
  end if;
  if jsonb_typeof(coalesce(p_settings, '{}'::jsonb)) <> 'object' then
    raise exception 'restart settings must be a JSON object, got %', left(p_settings::text, 200) using errcode = '22023';
  end if;
  v_problem := public.liveparams_trainer_json_problem(p_settings, public.liveparams_max_request_bytes());
  if v_problem is not null then
    raise exception 'restart settings refused: %', v_problem using errcode = '22023';
  end if;
  update public.local_training_jobs
     set trainer_restart_kind = p_kind,
         trainer_restart_step = p_step,
         trainer_restart_from_step = p_from_step,
         trainer_restart_settings = coalesce(p_settings, '{}'::jsonb),
         trainer_restart_seconds = p_seconds,
         trainer_restarted_at = now()
   where id = p_job_id;
  if not found then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
end;
$$;

-- The legacy entries' depth check (the latest body, 20261128160000_legacy_entry_depth.sql), on
-- liveparams_max_json_levels() instead of its literal 32: one definition of the bound.
create or replace function public.liveparams_move_entries(p_job_id uuid, p_entries jsonb[], p_outcomes jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_levels integer := public.liveparams_max_json_levels();
  v_entries jsonb[] := '{}'::jsonb[];
  v_stand_ins jsonb := '{}'::jsonb;  -- id -> the params stored for a deep entry
  v_entry jsonb;
  v_read jsonb;
  v_id text;
  v_params jsonb;
begin
  foreach v_entry in array coalesce(p_entries, '{}'::jsonb[]) loop
    v_read := v_entry;
    if jsonb_typeof(v_entry) = 'string' then  -- JSON text: judged by what it encodes, as it is stored
      begin
        v_read := (v_entry #>> '{}')::jsonb;
      exception when others then
        null;
      end;
    end if;
    if not public.liveparams_json_deeper_than(v_read, v_levels) then
      v_entries := array_append(v_entries, v_entry);
      continue;
    end if;
    -- Without an id, a hash of its text: liveparams_legacy_request_id() recurses once per level
    -- (PostgreSQL's stack gives out first), and no outcome recorded before the upgrade names it.
    v_id := case when jsonb_typeof(v_read -> 'id') = 'string' and v_read ->> 'id' <> '' then v_read ->> 'id'
                 else 'legacy-' || left(encode(sha256(convert_to(v_read::text, 'UTF8')), 'hex'), 16) end;
    v_params := jsonb_build_object('unreadable', left(v_read::text, 200));
    v_entries := array_append(v_entries, v_params || jsonb_build_object('id', v_id));
    v_stand_ins := v_stand_ins || jsonb_build_object(v_id, v_params);
  end loop;
  perform public.liveparams_move_readable_entries(p_job_id, v_entries, p_outcomes);
  -- Rejected only where the stand-in was stored: an id already taken keeps its own request.
  for v_id, v_params in select * from jsonb_each(v_stand_ins) loop
    if exists (select 1 from public.parameter_update_requests r
                where r.job_id = p_job_id and r.id = v_id and r.params = v_params and r.status is null) then
      perform public.liveparams_store_outcome(p_job_id, v_id, jsonb_build_object(
        'status', 'rejected',
        'reason', format('malformed request: nested more than %s levels deep, deeper than clients read back', v_levels)));
    end if;
  end loop;
end;
$$;

revoke all on function public.liveparams_trainer_json_problem(jsonb, integer) from public, anon, authenticated;
grant execute on function public.liveparams_max_json_levels() to anon, authenticated, service_role;
grant execute on function public.liveparams_max_outcome_bytes() to anon, authenticated, service_role;
