// How values, requests and the trainer's attachment read for a person: the same words as the CLI
// (liveparams/contract/_format.py, liveparams/jobs.py), so the panel, `watch` and the docs agree.

export const METADATA_KEYS = new Set(['id', 'requested_at', 'requested_by']);

/** A number as format_value() prints it: 3.32e-05, 0.3, 120. */
export function formatValue(value) {
  if (typeof value !== 'number') return value === null || value === undefined ? '—' : String(value);
  if (value === 0 || !Number.isFinite(value) || Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-2 && magnitude < 1e4) return String(Number(value.toPrecision(6)));
  const [mantissa, exponent] = value.toExponential(2).split('e');
  const sign = exponent.startsWith('-') ? '-' : '+';
  return `${mantissa}e${sign}${exponent.replace(/^[-+]/, '').padStart(2, '0')}`;
}

/** The parameters a request row carries, without the keys the server stamps on it. */
export function requestParams(row) {
  let params = row.params;
  if (typeof params === 'string') {
    try { params = JSON.parse(params); } catch { return { '(malformed)': params }; }
  }
  if (!params || typeof params !== 'object' || Array.isArray(params)) return { '(malformed)': params };
  return Object.fromEntries(Object.entries(params).filter(([key]) => !METADATA_KEYS.has(key)));
}

export function paramsText(params) {
  return Object.entries(params).map(([name, value]) => `${name}=${formatValue(value)}`).join(', ');
}

function changeText(name, change) {
  if (!change || typeof change !== 'object') return `${name}: ${change}`;
  if (name === 'command') return `${change.new} done`;
  return `${name}: ${formatValue(change.old)} → ${formatValue(change.new)}`;
}

/** old → new for an applied request, else its reason (what the history and a marker's tooltip say). */
export function requestDetail(row) {
  const changes = row.changes;
  if (changes && typeof changes === 'object' && Object.keys(changes).length) {
    return Object.entries(changes).map(([name, change]) => changeText(name, change)).join(', ');
  }
  if (row.superseded_by) return `superseded by ${String(row.superseded_by).slice(0, 8)}`;
  return row.reason ? String(row.reason) : '';
}

/** Where a request stands in one line: pending, applied at step N: …, rejected: …. */
export function requestOutcome(row) {
  const status = row.status || 'pending';
  const detail = requestDetail(row);
  if (status === 'applied') return `applied at step ${row.step}: ${detail}`;
  if (status === 'pending') return 'pending';
  const where = row.step === null || row.step === undefined ? '' : ` at step ${row.step}`;
  return `${status}${where}: ${detail}`;
}

/** "paused at step N" while `command=pause` holds the attached trainer (the job row says so), else null. */
export function pauseLabel(job) {
  return job.trainer_paused_at ? `paused at step ${job.trainer_pause_step}` : null;
}

/**
 * The job's last in-process restart or rewind and how long it took (the trainer's measure, from the
 * request's apply to the first step after train() again), from its trainer_restart_* columns, else
 * null; the same words as `liveparams job show` (_views.py restart_text), without the time of day.
 */
export function restartLabel(job) {
  const { trainer_restart_kind: kind, trainer_restart_step: step, trainer_restart_seconds: seconds } = job;
  if ((kind !== 'restart' && kind !== 'rewind') || step === null || step === undefined) return null;
  const took = typeof seconds === 'number' ? ` in ${seconds.toFixed(2)} s` : '';
  if (kind === 'rewind') return `rewound from step ${job.trainer_restart_from_step} to step ${step}${took}`;
  const shown = paramsText(job.trainer_restart_settings ?? {});
  return `restarted in-process at step ${step}${shown ? ` with ${shown}` : ''}${took}`;
}

/** Whether a trainer is attached, from the job row's trainer_* columns (_views.py trainer_attachment);
 *  `staleSeconds`: the database's bound on a heartbeat's age (dom.js heartbeatStaleSeconds). */
export function trainerState(job, staleSeconds, now = Date.now()) {
  if (!job.trainer_attached_at) return { attached: false, label: 'no trainer yet' };
  if (job.trainer_detached_at) {
    const where = job.trainer_detach_step === null || job.trainer_detach_step === undefined
      ? '' : ` at step ${job.trainer_detach_step}`;
    return { attached: false, label: `detached: ${job.trainer_detach_reason}${where}` };
  }
  const seen = Date.parse(job.trainer_seen_at || '');
  if (!Number.isFinite(seen) || (now - seen) / 1000 > staleSeconds) {
    return { attached: false, label: 'silent (no heartbeat)' };
  }
  return { attached: true, label: pauseLabel(job) ?? 'attached' };
}
