-- A legacy writer's entries are stored as they come, for the agent to validate and reject with a
-- reason. An entry nested deeper than JSON parsers read back (Python's stops near 1,000 levels;
-- PostgreSQL accepts far more) would make every REST read of the job's requests fail, holding
-- back every request after it. Such an entry is stored as a rejected request instead, with the
-- start of its text, so its writer sees why. Requests made through request_parameter_update()
-- are flat objects of scalars and never get here.

alter function public.liveparams_move_entries(uuid, jsonb[], jsonb) rename to liveparams_move_readable_entries;

-- Whether a JSON value nests more than p_levels containers (a scalar is level 1). The walk stops
-- one level past the limit, so its cost is bounded by the entry's size, not its depth.
create function public.liveparams_json_deeper_than(p_value jsonb, p_levels integer)
returns boolean
language sql
immutable
set search_path = ''
as $$
  with recursive walk (v, depth) as (
    select p_value, 1
    union all
    select c.v, w.depth + 1
      from walk w
      cross join lateral (
        select e.value as v from jsonb_each(case when jsonb_typeof(w.v) = 'object' then w.v end) e
        union all
        select a.value from jsonb_array_elements(case when jsonb_typeof(w.v) = 'array' then w.v end) a
      ) c
     where w.depth <= p_levels
  )
  select coalesce(max(depth), 0) > p_levels from walk;
$$;

create function public.liveparams_move_entries(p_job_id uuid, p_entries jsonb[], p_outcomes jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
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
    if not public.liveparams_json_deeper_than(v_read, 32) then
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
        'reason', 'malformed request: nested more than 32 levels deep, deeper than clients read back'));
    end if;
  end loop;
end;
$$;

revoke all on function public.liveparams_move_entries(uuid, jsonb[], jsonb) from public, anon, authenticated;
revoke all on function public.liveparams_json_deeper_than(jsonb, integer) from public, anon, authenticated;
