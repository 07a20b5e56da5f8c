// The jobs list: every job RLS lets the signed-in user see, kept current over Realtime.
import { dataOf, el, heartbeatStaleSeconds, retrying, setConnection } from './dom.js';
import { formatValue, requestDetail, trainerState } from './format.js';

const LISTED = 50;
const RESTALE_MS = 15000; // re-judge heartbeats that went stale without any change to the row

async function lastStep(supabase, job) {
  // The newest stored metrics point; a project without the metrics table still lists its jobs.
  const { data } = await supabase.from('training_metrics').select('step')
    .eq('job_id', job.id).order('step', { ascending: false }).limit(1);
  return data?.[0]?.step ?? job.trainer_detach_step ?? null;
}

async function lastChange(supabase, job) {
  const rows = dataOf(await supabase.from('parameter_update_requests').select('status,step,changes,reason,decided_at')
    .eq('job_id', job.id).not('status', 'is', null).order('seq', { ascending: false }).limit(1));
  const row = rows[0];
  return row ? `${row.status} at step ${row.step ?? '—'}: ${requestDetail(row)}` : '—';
}

async function load(supabase) {
  const staleSeconds = await heartbeatStaleSeconds(supabase);
  const jobs = dataOf(await supabase.from('local_training_jobs').select('*')
    .order('created_at', { ascending: false }).limit(LISTED));
  return Promise.all(jobs.map(async (job) => ({
    job, staleSeconds, step: await lastStep(supabase, job), change: await lastChange(supabase, job),
  })));
}

function render(rows) {
  if (!rows.length) return el('p', {}, 'No jobs yet. Create one with `liveparams job create` and start a training.');
  const head = el('tr', {}, ...['Job', 'Status', 'Trainer', 'Last step', 'Last change'].map((name) => el('th', { scope: 'col' }, name)));
  const body = rows.map(({ job, staleSeconds, step, change }) => {
    const trainer = trainerState(job, staleSeconds);
    return el('tr', { 'data-job-id': job.id },
      el('th', { scope: 'row' }, el('a', { href: `#/job/${job.id}` }, job.name || job.id)),
      el('td', {}, el('span', { class: `badge status-${job.status}` }, job.status)),
      el('td', { class: trainer.attached ? 'attached' : 'detached' }, trainer.label),
      el('td', {}, formatValue(step)),
      el('td', {}, change));
  });
  return el('table', { class: 'jobs' }, el('caption', {}, 'Your training jobs'), el('thead', {}, head), el('tbody', {}, ...body));
}

/** Shows the list in #main; returns the function that leaves it (closes its channel). */
export function showJobs(supabase) {
  let left = false;
  const main = document.getElementById('main');
  const list = el('div', { id: 'jobs' }, el('p', {}, 'loading…'));
  main.replaceChildren(el('h1', {}, 'Jobs'), list);
  let pending = null;
  const refresh = () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      try {
        const rows = await retrying(() => load(supabase), () => left);
        if (!left && rows) list.replaceChildren(render(rows));
      } catch (error) {
        list.replaceChildren(el('p', { role: 'alert' }, error.message));
      }
    }, 100);
  };
  const channel = supabase.channel('panel-jobs')
    .on('postgres_changes', { event: '*', schema: 'public', table: 'local_training_jobs' }, refresh)
    .on('postgres_changes', { event: '*', schema: 'public', table: 'parameter_update_requests' }, refresh)
    .subscribe((status, error) => {
      if (status === 'SUBSCRIBED') { setConnection(null); refresh(); }
      else if (!left) setConnection(error?.message || status.toLowerCase());
    });
  const timer = setInterval(refresh, RESTALE_MS);
  return () => { left = true; clearInterval(timer); clearTimeout(pending); supabase.removeChannel(channel); };
}
