// The jobs list: every job RLS lets the signed-in user see, kept current over Realtime. It is read
// whole when shown and on each (re)subscription (what was missed while away); after that a change
// updates its own row from the Realtime payload (the step included), so heartbeats cost no query.
import { dataOf, el, heartbeatStaleSeconds, retrying, setConnection, subscribePrivately, throttled } from './dom.js';
import { formatValue, requestDetail, trainerState } from './format.js';

const LISTED = 50;
const RESTALE_MS = 15000; // re-judge heartbeats that went stale without any change to the row (no query)
const RENDER_MS = 250; // one rendering per 250 ms at most, and always one within 250 ms of a change
// The step shown is the job row's: the trainer's step at its last heartbeat (trainer_step), else where
// it detached. Both come with each change's payload, so heartbeats cost no query. A row without either
// (a trainer before trainer_step, a database before 20261207130000_heartbeat_step.sql) gets its newest
// stored metrics point once per full read: the live metrics are one private channel per job, too many
// for a list.
const NO_CHANGE = { seq: -Infinity, text: '—' };

function rowStep(job) {
  return job.trainer_step ?? job.trainer_detach_step ?? null;
}

async function lastStep(supabase, job) {
  if (rowStep(job) !== null || !job.trainer_attached_at) return null;
  // A project without the metrics table still lists its jobs.
  const { data } = await supabase.from('training_metrics').select('step')
    .eq('job_id', job.id).order('step', { ascending: false }).limit(1);
  return data?.[0]?.step ?? null;
}

/** A decided request as the "Last change" column says it, with its seq (the newest one is shown). */
function changeOf(row) {
  return { seq: row.seq, text: `${row.status} at step ${row.step ?? '—'}: ${requestDetail(row)}` };
}

async function lastChange(supabase, jobId) {
  const rows = dataOf(await supabase.from('parameter_update_requests').select('seq,status,step,changes,reason,superseded_by')
    .eq('job_id', jobId).not('status', 'is', null).order('seq', { ascending: false }).limit(1));
  return rows[0] ? changeOf(rows[0]) : NO_CHANGE;
}

async function load(supabase) {
  const staleSeconds = await heartbeatStaleSeconds(supabase);
  const jobs = dataOf(await supabase.from('local_training_jobs').select('*')
    .order('created_at', { ascending: false }).limit(LISTED));
  const rows = await Promise.all(jobs.map(async (job) => [job.id, {
    job, step: await lastStep(supabase, job), change: await lastChange(supabase, job.id),
  }]));
  return { staleSeconds, rows: new Map(rows) };
}

const COLUMNS = ['Job', 'Status', 'Trainer', 'Last step', 'Last change'];

function render(rows, staleSeconds) {
  if (!rows.length) return el('p', {}, 'No jobs yet. Create one with ', el('code', {}, 'liveparams job create'), ' and start a training.');
  const head = el('tr', {}, ...COLUMNS.map((name) => el('th', { scope: 'col' }, name)));
  const body = rows.map(({ job, step, change }) => {
    const trainer = trainerState(job, staleSeconds);
    const cells = [ // [attributes, content] per column after the job's name
      [{}, el('span', { class: `badge status-${job.status}` }, job.status)],
      [{ class: trainer.attached ? 'attached' : 'detached' }, trainer.label],
      [{}, formatValue(rowStep(job) ?? step)],
      [{}, change.text],
    ];
    // Each cell carries its column's name: at phone width the header row is hidden and panel.css shows it before the value.
    return el('tr', { 'data-job-id': job.id },
      el('th', { scope: 'row' }, el('a', { href: `#/job/${job.id}` }, job.name || job.id)),
      ...cells.map(([attributes, content], index) => el('td', { ...attributes, 'data-label': COLUMNS[index + 1] }, content)));
  });
  return el('table', { class: 'jobs' }, el('caption', {}, 'Your training jobs'), el('thead', {}, head), el('tbody', {}, ...body));
}

/** Shows the list in #main; returns the function that leaves it (closes its channel). */
export function showJobs(supabase) {
  let left = false;
  let shown = null; // { staleSeconds, rows: Map job id → { job, step (read, when the row has none), change } }
  let queued = null; // while a full read runs: the changes that arrive meanwhile, applied after it
  const main = document.getElementById('main');
  const list = el('div', { id: 'jobs' }, el('p', {}, 'loading…'));
  main.replaceChildren(el('h1', { tabindex: -1 }, 'Jobs'), list);
  const draw = throttled(() => {
    if (!left && shown) list.replaceChildren(render([...shown.rows.values()], shown.staleSeconds));
  }, RENDER_MS);
  const reload = async () => {
    const mine = (queued = []); // a later read (after a reconnection) takes over the queue and decides
    try {
      const loaded = await retrying(() => load(supabase), () => left);
      if (queued !== mine || !loaded) return;
      shown = loaded;
      mine.forEach((apply) => apply());
      draw();
    } catch (error) {
      if (queued === mine) { shown = null; list.replaceChildren(el('p', { role: 'alert' }, error.message)); }
    } finally {
      if (queued === mine) queued = null;
    }
  };
  // The payload carries the whole row (RLS let us read it); past 1 MiB Realtime drops the values over
  // 64 bytes, so those keep what was shown. A new job has no metrics nor requests yet (foreign keys).
  const onJob = ({ eventType, new: job, old }) => {
    const { rows } = shown;
    const row = rows.get(job.id ?? old.id);
    if (eventType === 'DELETE') {
      if (!row) return;
      rows.delete(old.id);
      if (rows.size === LISTED - 1) { reload(); return; } // the next older job moves into the list
    } else if (row) {
      row.job = { ...row.job, ...job };
    } else if (eventType === 'INSERT') {
      shown.rows = new Map([[job.id, { job, step: null, change: NO_CHANGE }], ...rows].slice(0, LISTED));
    }
    draw();
  };
  // An INSERT or UPDATE carries the whole row; a DELETE (the key only on Supabase) comes with its job's.
  const onRequest = ({ new: request }) => {
    const row = shown.rows.get(request.job_id);
    if (!row || !request.status || request.seq < row.change.seq) return;
    row.change = changeOf(request);
    draw();
  };
  const retry = throttled(reload, RESTALE_MS); // after the server refused the read: on a change, every 15 s at most
  const live = (apply) => (payload) => {
    if (queued) queued.push(() => apply(payload));
    else if (shown) apply(payload);
    else retry();
  };
  // The list's channel is private to its user (docs/security.md, "Realtime"): it carries postgres_changes
  // only, which each row's RLS filters, but a project may allow private channels only.
  let leaveChannel = null;
  (async () => {
    await supabase.realtime.setAuth(); // a private channel is authorized with the signed-in user's token
    const { data } = await supabase.auth.getSession();
    if (left) return;
    leaveChannel = subscribePrivately(supabase, `liveparams-jobs-${data.session?.user?.id}`, (channel) => channel
      .on('postgres_changes', { event: '*', schema: 'public', table: 'local_training_jobs' }, live(onJob))
      .on('postgres_changes', { event: '*', schema: 'public', table: 'parameter_update_requests' }, live(onRequest)),
    (status, error) => {
      if (status === 'SUBSCRIBED') { setConnection(null); reload(); }
      else if (!left) setConnection(error?.message || status.toLowerCase());
    }, '20261207160000_private_jobs_channel.sql');
  })();
  const timer = setInterval(draw, RESTALE_MS);
  return () => { left = true; clearInterval(timer); leaveChannel?.(); };
}
