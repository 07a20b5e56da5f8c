// The panel's entry: where the project is (config.json beside index.html, or a form), who is
// signed in, and which view shows (#/ the jobs, #/job/<id> one job). Everything else is RLS's call.
import 'uplot/dist/uPlot.min.css';
import '../panel.css';
import { createClient } from '@supabase/supabase-js';
import { showJobs } from './jobs.js';
import { showJob } from './job.js';
import { el, setConnection } from './dom.js';

const CONFIG_STORE = 'liveparams-panel-config';

async function readConfig() {
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    if (response.ok) {
      const config = await response.json();
      if (config.url && config.key) return config;
    }
  } catch { /* a static host without config.json: ask */ }
  const stored = localStorage.getItem(CONFIG_STORE);
  return stored ? { ...JSON.parse(stored), stored: true } : null;
}

/** The form that asks for the project; `problem`: why the one stored could not be used. */
function askConfig(problem) {
  const main = document.getElementById('main');
  document.title = 'Project – liveparams';
  const form = el('form', { class: 'card narrow', 'aria-labelledby': 'config-title' },
    el('h1', { id: 'config-title' }, 'Which Supabase project?'),
    problem && el('p', { class: 'form-message refused', role: 'alert' }, problem),
    el('p', {}, 'The project URL and its publishable (anon) key. Never a secret or service role key.'),
    el('label', { for: 'config-url' }, 'Project URL'),
    el('input', { id: 'config-url', name: 'url', type: 'url', required: '', placeholder: 'https://xyz.supabase.co' }),
    el('label', { for: 'config-key' }, 'Publishable key'),
    el('input', { id: 'config-key', name: 'key', required: '', autocomplete: 'off' }),
    el('button', { type: 'submit' }, 'Use this project'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    localStorage.setItem(CONFIG_STORE, JSON.stringify({ url: data.get('url'), key: data.get('key') }));
    location.reload();
  });
  main.replaceChildren(form);
}

function signInForm(supabase, config) {
  const message = el('p', { class: 'form-message', role: 'alert' });
  const form = el('form', { class: 'card narrow', 'aria-labelledby': 'signin-title' },
    el('h1', { id: 'signin-title' }, 'Sign in'),
    el('label', { for: 'email' }, 'Email'),
    el('input', { id: 'email', name: 'email', type: 'email', autocomplete: 'username', required: '' }),
    el('label', { for: 'password' }, 'Password'),
    el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: '' }),
    el('button', { type: 'submit' }, 'Sign in'),
    message,
    config.stored && el('button', { type: 'button', class: 'link', onclick: changeProject }, 'Change project'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    message.textContent = 'signing in…';
    const { error } = await supabase.auth.signInWithPassword({ email: data.get('email'), password: data.get('password') });
    message.textContent = error ? error.message : '';
  });
  document.title = 'Sign in – liveparams';
  document.getElementById('main').replaceChildren(form);
  form.querySelector('input').focus();
}

/** Forgets the project this browser stored and asks for it again (a wrong URL or key is not for ever). */
function changeProject() {
  localStorage.removeItem(CONFIG_STORE);
  askConfig();
}

let leave = () => {};

function route(supabase, config, session) {
  leave();
  leave = () => {};
  setConnection(undefined);
  const who = document.getElementById('who');
  if (!session) {
    who.replaceChildren();
    signInForm(supabase, config);
    return;
  }
  const signOut = el('button', { type: 'button', class: 'link' }, 'Sign out');
  signOut.addEventListener('click', () => supabase.auth.signOut());
  who.replaceChildren(el('span', {}, session.user.email || ''), signOut);
  const match = location.hash.match(/^#\/job\/([0-9a-f-]{36})$/i);
  if (!match) document.title = 'Jobs – liveparams'; // a job's page names its job once it is read
  leave = match ? showJob(supabase, match[1]) : showJobs(supabase);
  document.querySelector('#main h1')?.focus(); // a screen reader starts at the new view, not at the page's top
}

async function start() {
  const config = await readConfig();
  if (!config) return askConfig();
  let supabase;
  try {
    supabase = createClient(config.url, config.key);
  } catch (error) {
    if (config.stored) localStorage.removeItem(CONFIG_STORE);
    return askConfig(`This project cannot be used (${error.message}): enter its URL and publishable key again.`);
  }
  let session = (await supabase.auth.getSession()).data.session;
  let signedIn = session?.user?.id;
  supabase.auth.onAuthStateChange((event, next) => {
    session = next;
    if ((next?.user?.id) !== signedIn) { // sign-in, sign-out, another user; not a token refresh
      signedIn = next?.user?.id;
      setTimeout(() => route(supabase, config, session)); // outside the auth callback (supabase-js's advice)
    }
  });
  window.addEventListener('hashchange', () => route(supabase, config, session));
  route(supabase, config, session);
}

start();
