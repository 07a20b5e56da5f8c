-- liveparams: live metrics of a training run (issue 21; docs/contracts.md, "Live metrics").
--
-- What the trainer's `on_log` sees (loss, learning rate, grad norm, epoch, eval metrics) reaches
-- the job's owner two ways:
--
--   live      Realtime Broadcast on the private topic `job-metrics:<job id>`, event `metrics`
--             (about one message a second). Who may receive and send is decided by RLS on
--             realtime.messages below: the job's owner receives, the job's trainer sends.
--   history   rows of public.training_metrics, for a panel opened mid-run. The trainer writes them
--             through record_training_metrics (about once every 10 s); the owner reads them.
--             A job keeps at most liveparams_max_metric_rows() rows: past it the older points are
--             thinned to one per step bucket, so a million-step run stores what a thousand-step one does.
--
-- Nothing here touches local_training_jobs or parameter_update_requests: the job row stays
-- small, and a request costs what it did, however many points a job has logged.

create table if not exists public.training_metrics (
  job_id uuid not null references public.local_training_jobs (id) on delete cascade,
  step integer not null check (step >= 0),
  metrics jsonb not null check (jsonb_typeof(metrics) = 'object'),
  logged_at timestamptz not null default now(),
  primary key (job_id, step)
);

comment on table public.training_metrics is
  'What the trainer logged per step (loss, learning_rate, grad_norm, epoch, eval_*), at most '
  'liveparams_max_metric_rows() rows per job. Written only through record_training_metrics.';

-- Most rows a job keeps; past it, record_training_metrics thins the job's points to half of it.
create or replace function public.liveparams_max_metric_rows()
returns integer
language sql
immutable
set search_path = ''
as $$ select 2000 $$;

-- Most points one record_training_metrics call takes, and most metrics one point holds.
create or replace function public.liveparams_max_metric_points()
returns integer
language sql
immutable
set search_path = ''
as $$ select 1000 $$;

-- The job a metrics topic belongs to: `job-metrics:<uuid>` gives the uuid, anything else NULL
-- (never an error, so a policy evaluated on another topic simply does not match).
create or replace function public.liveparams_metrics_topic_job(p_topic text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select case when p_topic ~* '^job-metrics:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
              then substr(p_topic, 13)::uuid end
$$;

-- Thins a job's points to at most half of liveparams_max_metric_rows(): the steps are cut into
-- buckets of the smallest power-of-two width that leaves that many, and each bucket keeps its
-- latest point. The whole run stays evenly covered, and the newest point is always kept.
-- Runs over at most liveparams_max_metric_rows() + one batch of rows, whatever the run's length.
create or replace function public.liveparams_thin_training_metrics(p_job_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_keep integer := public.liveparams_max_metric_rows() / 2;
  v_width bigint := 1;
  v_buckets integer;
begin
  loop
    select count(distinct m.step / v_width) into v_buckets from public.training_metrics m where m.job_id = p_job_id;
    exit when v_buckets <= v_keep;
    v_width := v_width * 2;
  end loop;
  delete from public.training_metrics t
   using (select m.step, row_number() over (partition by m.step / v_width order by m.step desc) as rank
            from public.training_metrics m
           where m.job_id = p_job_id) k
   where t.job_id = p_job_id and t.step = k.step and k.rank > 1;
end;
$$;

-- The trainer's write: p_points is [{"step": int >= 0, "metrics": {name: number, ...}}, ...].
-- A point at a step already stored adds its metrics to that step's (training and evaluation
-- logs of one step arrive separately). Only the job's trainer credential (or service_role) may
-- call it; a malformed batch is refused whole with 22023.
create or replace function public.record_training_metrics(p_job_id uuid, p_points jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_is_service boolean := coalesce(auth.role(), '') = 'service_role';
  v_point jsonb;
  v_rows integer;
begin
  if not v_is_service and public.liveparams_trainer_job_id() is distinct from p_job_id then
    raise exception 'this token may not record metrics for training job % (not its trainer credential, or revoked)',
      p_job_id using errcode = '42501';
  end if;
  if p_points is null or jsonb_typeof(p_points) <> 'array' then
    raise exception 'points must be a JSON array of {"step", "metrics"}' using errcode = '22023';
  end if;
  if jsonb_array_length(p_points) > public.liveparams_max_metric_points() then
    raise exception 'at most % points per call, got %', public.liveparams_max_metric_points(),
      jsonb_array_length(p_points) using errcode = '22023';
  end if;
  for v_point in select * from jsonb_array_elements(p_points) loop
    if jsonb_typeof(v_point) <> 'object'
       or jsonb_typeof(v_point -> 'step') is distinct from 'number'
       or (v_point ->> 'step')::numeric <> floor((v_point ->> 'step')::numeric)
       or (v_point ->> 'step')::numeric not between 0 and 2147483647
       or jsonb_typeof(v_point -> 'metrics') is distinct from 'object'
       or (select count(*) from jsonb_object_keys(v_point -> 'metrics')) > 64
       or exists (select 1 from jsonb_each(v_point -> 'metrics') e
                   where jsonb_typeof(e.value) <> 'number' or length(e.key) > 128) then
      raise exception 'a point must be {"step": integer >= 0, "metrics": {name: number}} (at most 64 names): %',
        left(v_point::text, 200) using errcode = '22023';
    end if;
  end loop;

  -- One trainer per job; the lock keeps two calls from thinning the same rows at once.
  perform pg_advisory_xact_lock(hashtextextended('liveparams.training_metrics:' || p_job_id::text, 0));
  perform 1 from public.local_training_jobs where id = p_job_id;
  if not found then
    raise exception 'training job % not found', p_job_id using errcode = 'PT404';
  end if;
  insert into public.training_metrics as t (job_id, step, metrics)
  select p_job_id, (p ->> 'step')::integer, jsonb_object_agg(e.key, e.value)
    from jsonb_array_elements(p_points) p, jsonb_each(p -> 'metrics') e
   group by (p ->> 'step')::integer
  on conflict (job_id, step) do update set metrics = t.metrics || excluded.metrics, logged_at = now();

  select count(*) into v_rows from public.training_metrics where job_id = p_job_id;
  if v_rows > public.liveparams_max_metric_rows() then
    perform public.liveparams_thin_training_metrics(p_job_id);
  end if;
  return jsonb_build_object('recorded', jsonb_array_length(p_points));
end;
$$;

revoke all on function public.liveparams_thin_training_metrics(uuid) from public, anon, authenticated;
revoke all on function public.record_training_metrics(uuid, jsonb) from public, anon;
grant execute on function public.record_training_metrics(uuid, jsonb) to authenticated, service_role;
grant execute on function public.liveparams_max_metric_rows() to anon, authenticated, service_role;
grant execute on function public.liveparams_max_metric_points() to anon, authenticated, service_role;
grant execute on function public.liveparams_metrics_topic_job(text) to anon, authenticated, service_role;

-- Row Level Security: the job's owner reads; nobody writes directly (only through the RPC).
alter table public.training_metrics enable row level security;
revoke all on table public.training_metrics from anon, authenticated;
grant select on table public.training_metrics to authenticated;
grant all on table public.training_metrics to service_role;

drop policy if exists "owners read their jobs' metrics" on public.training_metrics;
create policy "owners read their jobs' metrics" on public.training_metrics
  for select to authenticated
  using (exists (select 1 from public.local_training_jobs j
                  where j.id = job_id and j.user_id = (select auth.uid())));

-- Realtime Broadcast on `job-metrics:<job id>`: RLS on realtime.messages authorizes private
-- channels (Realtime evaluates it with realtime.topic() set to the channel's topic).
drop policy if exists "job owners receive their jobs' metrics" on realtime.messages;
create policy "job owners receive their jobs' metrics" on realtime.messages
  for select to authenticated
  using (realtime.messages.extension = 'broadcast'
         and exists (select 1 from public.local_training_jobs j
                      where j.id = public.liveparams_metrics_topic_job((select realtime.topic()))
                        and j.user_id = (select auth.uid())));

drop policy if exists "a job's trainer sends its metrics" on realtime.messages;
create policy "a job's trainer sends its metrics" on realtime.messages
  for insert to authenticated
  with check (realtime.messages.extension = 'broadcast'
              and public.liveparams_metrics_topic_job((select realtime.topic()))
                  = (select public.liveparams_trainer_job_id()));
