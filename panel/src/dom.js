// Tiny DOM helpers shared by the views.

/** An element with attributes (`on*` functions become listeners) and children (strings or nodes). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/**
 * The header's connection state: "live", or "disconnected, retrying (why)" until it is back;
 * `undefined` hides it (nothing connected yet, or signed out).
 */
export function setConnection(problem) {
  const banner = document.getElementById('connection');
  banner.hidden = problem === undefined;
  banner.className = `connection ${problem ? 'down' : 'live'}`;
  banner.textContent = problem === undefined ? '' : problem ? `disconnected, retrying (${problem})` : 'live';
}

/**
 * Calls `load` until it succeeds, backing off 1 s → 10 s and saying "disconnected, retrying" while
 * the server cannot be reached; an answer the server gave (RLS, a refusal) is thrown at once.
 */
export async function retrying(load, isLeft, say = setConnection) {
  for (let failures = 0; !isLeft(); failures += 1) {
    try {
      const result = await load();
      say(null);
      return result;
    } catch (error) {
      if (!error.transient) throw error;
      say(error.message || String(error));
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * 2 ** failures, 10000)));
    }
  }
  return undefined;
}

/** Throws the PostgREST/RPC error of a supabase-js answer (`transient` when no server answered), else its data. */
export function dataOf({ data, error, status }) {
  if (error) {
    const transient = !status || status >= 500 || !error.code;
    throw Object.assign(new Error(error.message || 'request failed'), { code: error.code, transient });
  }
  return data;
}

let staleSeconds = null;

/** Seconds after which a silent trainer is gone: the database's own bound (rpc liveparams_trainer_stale_seconds),
 *  the one `job end` and the CLI use, so the panel never judges a heartbeat by a number of its own. Read once. */
export async function heartbeatStaleSeconds(supabase) {
  staleSeconds ??= dataOf(await supabase.rpc('liveparams_trainer_stale_seconds'));
  return staleSeconds;
}

/**
 * `run` at most once every `ms`, and always within `ms` of a call, however often it is called: a burst
 * of calls cannot postpone it (a debounce that restarts its timer on each call can, for ever).
 */
export function throttled(run, ms) {
  let timer = null;
  let last = -Infinity;
  return () => {
    if (timer !== null) return; // the run already planned sees this call's change too
    timer = setTimeout(() => { timer = null; last = Date.now(); run(); }, Math.max(0, last + ms - Date.now()));
  };
}

/**
 * Joins `topic` as a private channel (authorized by RLS on realtime.messages) and returns the function
 * that leaves it. A database without the `migration` that authorizes it refuses the join
 * ("Unauthorized"): then the public channel of the same topic, as earlier versions joined, so the
 * panel and the database may be upgraded in either order. `build(channel)` adds the listeners to
 * whichever channel is joined; `onStatus` gets its subscription states.
 */
export function subscribePrivately(supabase, topic, build, onStatus, migration) {
  let left = false;
  let channel = build(supabase.channel(topic, { config: { private: true } }));
  channel.subscribe(async (status, error) => {
    if (status !== 'CHANNEL_ERROR' || !error?.message?.includes('Unauthorized')) { onStatus(status, error); return; }
    console.warn(`liveparams: the private channel ${topic} was refused (the database lacks migration ${migration}): `
      + 'joining the public one instead');
    await supabase.removeChannel(channel); // the client keeps one channel per topic
    if (left) return;
    channel = build(supabase.channel(topic, { config: { private: false } })).subscribe(onStatus);
  });
  return () => { left = true; supabase.removeChannel(channel); };
}
