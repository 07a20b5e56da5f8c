// The controls, generated from the database's parameter spec (rpc liveparams_parameter_spec): one
// field per live parameter named as the API spells it, restart-only ones disabled with the reason,
// and the `command` parameter's choices as buttons (`checkpoint`, which only goes with command=rewind, is
// asked for by Rewind's confirmation). The RPC judges every value; the form only reads it.
import { el } from './dom.js';
import { formatValue } from './format.js';

const RESTART_REASON = 'cannot change while training runs (it needs a restart)';
const COMMAND_LABELS = {
  save_checkpoint: 'Save checkpoint', evaluate: 'Evaluate', stop: 'Stop', pause: 'Pause', resume: 'Resume',
  rewind: 'Rewind',
};

/** "(0, 1]", "≥ 1, whole number": the bounds as a person reads them. */
function hint(spec) {
  const parts = [];
  if (spec.type === 'integer') parts.push('whole number');
  if (spec.min !== undefined || spec.max !== undefined) {
    const low = spec.min === undefined ? '(−∞' : `${spec.min_exclusive ? '(' : '['}${formatValue(spec.min)}`;
    const high = spec.max === undefined ? '∞)' : `${formatValue(spec.max)}]`;
    parts.push(`${low}, ${high}`);
  }
  if (spec.choices) parts.push(spec.choices.join(' | '));
  return parts.join(', ');
}

/** What a typed value is sent as: a number when it reads as one, else the text (the RPC says why not). */
export function readValue(spec, text) {
  const trimmed = text.trim();
  if (spec.type === 'string') return trimmed;
  const number = Number(trimmed);
  return trimmed !== '' && Number.isFinite(number) ? number : trimmed;
}

/** The name with a line-break opportunity after each underscore, so a long one wraps between words on a phone. */
function breakable(name) {
  return name.split('_').flatMap((part, index, parts) => (index < parts.length - 1 ? [`${part}_`, el('wbr')] : [part]));
}

function field(name, spec) {
  const id = `param-${name}`;
  const hintId = `${id}-hint`;
  const disabled = Boolean(spec.restart_only);
  const input = spec.choices
    ? el('select', { id, name, 'aria-describedby': hintId, disabled },
      el('option', { value: '' }, '(unchanged)'), ...spec.choices.map((choice) => el('option', { value: choice }, choice)))
    : el('input', {
      id, name, type: 'text', inputmode: spec.type === 'integer' ? 'numeric' : 'decimal', autocomplete: 'off',
      'aria-describedby': hintId, disabled, 'data-type': spec.type,
    });
  const described = disabled ? `restart only: ${RESTART_REASON}` : hint(spec);
  return el('div', { class: `field${disabled ? ' restart-only' : ''}`, 'data-param': name },
    el('label', { for: id }, ...breakable(name)),
    input,
    el('small', { id: hintId, class: 'hint' }, described),
    el('small', { class: 'in-force', 'aria-live': 'off' }));
}

/** Sends `params` with `buttons` disabled and "sending…" in `message`, then says how it went; resolves to the error. */
async function sendShowing(send, params, buttons, message, sentText) {
  buttons.forEach((button) => { button.disabled = true; });
  message.className = 'form-message';
  message.textContent = 'sending…';
  const error = await send(params);
  buttons.forEach((button) => { button.disabled = false; });
  message.className = `form-message ${error ? 'refused' : 'sent'}`;
  message.textContent = error ? `Refused: ${error}` : sentText;
  return error;
}

/**
 * The parameters form and the command buttons. `send(params)` makes one request and resolves to
 * an error message or null; a form with several fields is one request, so it is applied whole or refused whole.
 * `confirmations[command]()` asks first and resolves to the parameters that go with the command, or null (not sent).
 */
export function buildControls(spec, send, confirmations) {
  const names = Object.keys(spec).filter((name) => name !== 'command' && name !== 'checkpoint').sort((a, b) =>
    Number(Boolean(spec[a].restart_only)) - Number(Boolean(spec[b].restart_only)) || a.localeCompare(b));
  const message = el('p', { class: 'form-message', role: 'status', 'aria-live': 'polite' });
  const submit = el('button', { type: 'submit' }, 'Send');
  const form = el('form', { class: 'controls', novalidate: true, 'aria-label': 'Change parameters' },
    el('div', { class: 'fields' }, ...names.map((name) => field(name, spec[name]))),
    el('div', { class: 'actions' }, submit, message));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const params = {};
    for (const name of names) {
      const input = form.elements.namedItem(name);
      if (!input.disabled && input.value.trim() !== '') params[name] = readValue(spec[name], input.value);
    }
    if (!Object.keys(params).length) { message.textContent = 'Enter a new value first.'; return; }
    const error = await sendShowing(send, params, [submit], message, 'Sent; waiting for the trainer (see Requests).');
    if (!error) form.reset();
  });

  const commands = spec.command?.choices ?? [];
  const commandMessage = el('p', { class: 'form-message', role: 'status', 'aria-live': 'polite' });
  const buttons = commands.map((command) => el('button', {
    type: 'button', class: command in confirmations ? 'danger' : '', 'data-command': command,
    onclick: async () => {
      const extra = command in confirmations ? await confirmations[command]() : {};
      if (!extra) return;
      await sendShowing(send, { command, ...extra }, buttons, commandMessage, `${COMMAND_LABELS[command] ?? command}: sent.`);
    },
  }, COMMAND_LABELS[command] ?? command));
  const commandBar = el('div', { class: 'commands', role: 'group', 'aria-label': 'Commands' }, ...buttons, commandMessage);

  const showInForce = (values) => {
    for (const name of names) {
      const slot = form.querySelector(`[data-param="${name}"] .in-force`);
      slot.textContent = name in (values ?? {}) ? `in force: ${formatValue(values[name])}` : '';
    }
  };
  return { form, commandBar, showInForce };
}
