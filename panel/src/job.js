// One job: its live chart, the values in force, the controls and the request history. The job row
// and its requests arrive over Realtime postgres_changes (as `liveparams watch` reads them), metrics
// over the job's private Broadcast topic, and everything is read again after each reconnection.
import { RunChart } from './chart.js';
import { buildControls, readValue } from './controls.js';
import { dataOf, el, heartbeatStaleSeconds, retrying, setConnection, subscribePrivately } from './dom.js';
import {
  formatValue, paramsText, pauseLabel, requestOutcome, requestDetail, requestParams, restartLabel, trainerState,
} from './format.js';

const WATCHED = 200; // requests shown: the latest ones, as `watch` does
const SEND_ATTEMPTS = 5; // a request whose answer was lost is sent again with the same id (idempotent)

const newId = () => crypto.randomUUID?.() ?? ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g,
  (c) => (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));

/**
 * A confirmation for `command`; with `checkpoint`, also an optional "checkpoint step" (empty: the latest).
 * Resolves to the parameters that go with the command ({} or {checkpoint: N}), or null when the person said no.
 */
function confirmDialog(command, text, action, checkpoint = false) {
  const textId = `confirm-${command}-text`;
  const step = checkpoint ? el('input', {
    id: `confirm-${command}-checkpoint`, type: 'text', inputmode: 'numeric', autocomplete: 'off',
    'aria-describedby': `${textId}-hint`,
  }) : null;
  const dialog = el('dialog', { class: 'confirm', 'aria-labelledby': textId },
    el('p', { id: textId }, text),
    step && el('div', { class: 'field' },
      el('label', { for: step.id }, 'Checkpoint step'), step,
      el('small', { id: `${textId}-hint`, class: 'hint' }, 'empty: the latest checkpoint')),
    el('form', { method: 'dialog' },
      el('button', { value: 'cancel', autofocus: true }, 'Cancel'),
      el('button', { value: command, class: 'danger' }, action)));
  // Enter in the step field answers yes (the form's default button would be Cancel).
  step?.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); dialog.close(command); }
  });
  document.body.append(dialog);
  return () => new Promise((resolve) => {
    dialog.returnValue = '';
    if (step) step.value = '';
    dialog.addEventListener('close', () => {
      if (dialog.returnValue !== command) resolve(null);
      else resolve(step?.value.trim() ? { checkpoint: readValue({ type: 'integer' }, step.value) } : {});
    }, { once: true });
    dialog.showModal();
  });
}

/** Shows the job in #main; returns the function that leaves it (closes its channels). */
export function showJob(supabase, jobId) {
  let left = false;
  const state = { job: null, requests: new Map(), refused: [], trainerPresent: false, spec: null, staleSeconds: null };
  const main = document.getElementById('main');
  const title = el('h1', { tabindex: -1 }, 'Job');
  // What a screen reader hears as it happens: a request decided, the trainer's state changed (the last few lines).
  const announcer = el('div', { class: 'visually-hidden', role: 'status', id: 'announcements' });
  const announce = (text) => {
    announcer.append(el('p', {}, text));
    while (announcer.childElementCount > 5) announcer.firstElementChild.remove();
  };
  let trainerText = null;
  const badges = el('p', { class: 'badges' });
  const chartBox = el('div', { class: 'chart', role: 'group', 'aria-label': 'loss and learning rate per step, with a marker per decided request' });
  const chartNote = el('p', { class: 'note', role: 'status' });
  const inForce = el('dl', { class: 'in-force' });
  const controlsBox = el('div', {}, el('p', {}, 'loading the parameter spec…'));
  const commandsBox = el('div');
  const history = el('ol', { class: 'history', reversed: true });
  main.replaceChildren(
    el('p', {}, el('a', { href: '#/' }, '← all jobs')),
    title, badges, announcer,
    el('section', { class: 'card wide', 'aria-labelledby': 'chart-title' },
      el('h2', { id: 'chart-title' }, 'Training'), chartBox, chartNote),
    el('div', { class: 'columns' },
      el('section', { class: 'card', 'aria-labelledby': 'controls-title' },
        el('h2', { id: 'controls-title' }, 'Change parameters'), commandsBox, controlsBox),
      el('section', { class: 'card', 'aria-labelledby': 'values-title' },
        el('h2', { id: 'values-title' }, 'Values in force'), inForce,
        el('h2', { id: 'history-title' }, 'Requests'), history)));
  const chart = new RunChart(chartBox);
  const confirmations = {  // the commands that lose something: asked first
    stop: confirmDialog('stop', 'Stop this training run? The trainer saves a checkpoint, then stops.', 'Stop the run'),
    rewind: confirmDialog('rewind', 'Rewind to a checkpoint? The steps trained since it are trained again.',
      'Rewind the run', true),
  };
  let controls = null;

  const render = () => {
    const job = state.job;
    if (!job) return;
    title.textContent = job.name || job.id;
    document.title = `${job.name || job.id} – liveparams`;
    const trainer = trainerState(job, state.staleSeconds);
    const attached = !job.trainer_detached_at && (state.trainerPresent || trainer.attached);
    const restarted = restartLabel(job);
    const trainerNow = `trainer: ${attached ? pauseLabel(job) ?? 'attached' : trainer.label}`;
    if (trainerText !== null && trainerNow !== trainerText) announce(trainerNow);
    trainerText = trainerNow;
    badges.replaceChildren(
      el('span', { class: `badge status-${job.status}` }, `status: ${job.status}`),
      el('span', { class: `badge ${attached ? 'attached' : 'detached'}`, id: 'trainer' },
        trainerNow),
      ...(restarted ? [el('span', { class: 'badge restart', id: 'restart', title: job.trainer_restarted_at ?? '' },
        `last restart: ${restarted}`)] : []));
    const values = job.parameters_in_force ?? {};
    const applied = job.parameters_applied_step;
    inForce.replaceChildren(...Object.entries(values).flatMap(([name, value]) => [el('dt', {}, name), el('dd', {}, formatValue(value))]));
    if (!Object.keys(values).length) inForce.append(el('dd', {}, 'the values the run started with (nothing changed yet)'));
    else if (applied !== null && applied !== undefined) inForce.append(el('dt', {}, 'since step'), el('dd', {}, String(applied)));
    controls?.showInForce(values);

    const rows = [...state.requests.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    const entries = rows.map((row) => ({
      key: `r${row.seq}`, label: `#${row.seq}`, params: requestParams(row),
      status: row.status || 'pending', text: requestOutcome(row), at: row.requested_at,
    }));
    entries.push(...state.refused.map((refusal, index) => ({
      key: `x${index}`, label: '—', params: refusal.params, status: 'refused',
      text: `refused by the server: ${refusal.reason}`, at: refusal.at,
    })));
    entries.sort((a, b) => String(b.at).localeCompare(String(a.at)));
    history.replaceChildren(...entries.map((entry) => el('li', { 'data-status': entry.status },
      el('span', { class: 'seq' }, entry.label), ' ',
      el('code', {}, paramsText(entry.params)), ' ',
      el('span', { class: `outcome status-${entry.status}` }, entry.text))));

    chart.setMarkers([
      ...rows.filter((row) => row.status && row.step !== null && row.step !== undefined).map((row) => ({
        step: row.step, kind: row.status === 'applied' ? 'applied' : 'rejected',
        text: row.status === 'applied' ? requestDetail(row) : `${paramsText(requestParams(row))}: ${requestDetail(row)}`,
      })),
      ...state.refused.filter((refusal) => refusal.step !== null).map((refusal) => ({
        step: refusal.step, kind: 'refused', text: `${paramsText(refusal.params)}: ${refusal.reason}`,
      })),
    ]);
  };

  const takeRequest = (row) => {
    state.requests.set(row.id, row);
    if (state.requests.size > WATCHED) {
      const oldest = [...state.requests.values()].sort((a, b) => a.seq - b.seq)[0];
      state.requests.delete(oldest.id);
    }
  };

  const reread = async () => {
    state.staleSeconds = await heartbeatStaleSeconds(supabase);
    const jobs = dataOf(await supabase.from('local_training_jobs').select('*').eq('id', jobId).limit(1));
    if (!jobs.length) throw Object.assign(new Error('job not found (or not yours)'), { transient: false });
    state.job = jobs[0];
    const rows = dataOf(await supabase.from('parameter_update_requests').select('*').eq('job_id', jobId)
      .order('seq', { ascending: false }).limit(WATCHED));
    rows.forEach(takeRequest);
    render();
  };

  const rereadMetrics = async () => {
    const answer = await supabase.from('training_metrics').select('step,metrics').eq('job_id', jobId).order('step');
    if (answer.error && answer.status && answer.status < 500) return; // a project without live metrics: no chart
    chart.add(dataOf(answer));
  };

  const send = async (params) => {
    const id = newId();
    for (let attempt = 1; ; attempt += 1) {
      const answer = await supabase.rpc('request_parameter_update', { p_job_id: jobId, p_params: params, p_request_id: id });
      try {
        const stored = dataOf(answer); // {<params>, id, seq, requested_at, requested_by}
        if (stored?.id && !state.requests.has(stored.id)) { // shown pending at once; Realtime brings the outcome
          const { id, seq, requested_at: requestedAt, requested_by: requestedBy, ...sent } = stored;
          takeRequest({ id, seq, job_id: jobId, params: sent, requested_at: requestedAt, requested_by: requestedBy, status: null });
          render();
        }
        return null;
      } catch (error) {
        if (!error.transient) {
          state.refused.push({ step: chart.lastStep, params, reason: error.message, at: new Date().toISOString() });
          render();
          return error.message;
        }
        if (attempt >= SEND_ATTEMPTS) return `not sent, the server cannot be reached (${error.message}); try again`;
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  };

  // `say` shows a lost connection: the banner for the job's channel, a note under the chart for metrics
  // (a project without live metrics refuses that private topic, and the rest of the page still works).
  const live = (what, say) => (status, error) => {
    if (left) return;
    if (status === 'SUBSCRIBED') {
      retrying(what, () => left, say).catch((failure) => say(failure.message));
    } else {
      say(error?.message || status.toLowerCase().replace('_', ' '));
    }
  };
  const metricsNote = (problem) => {
    chartNote.textContent = problem ? `live metrics: disconnected, retrying (${problem})` : '';
  };

  // The job's channel is private: only the job's owner and its trainer may join it, and only the trainer
  // shows as present (docs/security.md, "Realtime").
  const jobChannel = (channel) => channel
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'local_training_jobs', filter: `id=eq.${jobId}` },
      ({ new: row }) => { state.job = row; render(); })
    .on('postgres_changes', { event: '*', schema: 'public', table: 'parameter_update_requests', filter: `job_id=eq.${jobId}` },
      ({ new: row }) => {
        if (!row?.id) return;
        const before = state.requests.get(row.id);
        if (before && !before.status && row.status) announce(`#${row.seq} ${requestOutcome(row)}`); // decided
        takeRequest(row);
        render();
      })
    .on('presence', { event: 'sync' }, () => {
      state.trainerPresent = 'trainer' in channel.presenceState();
      render();
    });
  let leaveJobChannel = null;
  let metricsChannel = null;

  (async () => {
    try {
      await retrying(reread, () => left, (problem) => problem && setConnection(problem));
      const spec = dataOf(await supabase.rpc('liveparams_parameter_spec'));
      if (left) return;
      controls = buildControls(spec, send, confirmations);
      controlsBox.replaceChildren(controls.form);
      commandsBox.replaceChildren(controls.commandBar);
      render();
    } catch (error) {
      main.replaceChildren(el('p', {}, el('a', { href: '#/' }, '← all jobs')), el('p', { role: 'alert' }, error.message));
      return;
    }
    await supabase.realtime.setAuth(); // a private channel is authorized with the signed-in user's token
    if (left) return;
    leaveJobChannel = subscribePrivately(supabase, `liveparams-job-${jobId}`, jobChannel, live(reread, setConnection),
      '20261207150000_private_job_channel.sql');
    metricsChannel = supabase.channel(`job-metrics:${jobId}`, { config: { private: true } })
      .on('broadcast', { event: 'metrics' }, ({ payload }) => chart.add(payload?.points ?? []))
      .subscribe(live(rereadMetrics, metricsNote));
  })();

  return () => {
    left = true;
    leaveJobChannel?.();
    if (metricsChannel) supabase.removeChannel(metricsChannel);
    document.querySelectorAll('dialog.confirm').forEach((dialog) => dialog.remove());
  };
}
