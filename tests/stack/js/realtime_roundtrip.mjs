// supabase-js (vsn 2.0.0) against a Supabase stack: postgres_changes, binary broadcast, heartbeat.
//
// Run by tests/stack/test_realtime_js.py. Input: API_URL, ANON_KEY, USER_JWT, JOB_ID in the
// environment. Output: one JSON object per line on stdout ({"kind": ...}); the test reads them,
// makes the database change after "ready", and the script exits once it has seen everything.
import { createClient } from '@supabase/supabase-js'

const { API_URL, ANON_KEY, USER_JWT, JOB_ID } = process.env
const emit = (kind, fields = {}) => console.log(JSON.stringify({ kind, ...fields }))
const seen = new Set()
const need = ['change', 'broadcast', 'heartbeat-ok']
const note = (kind) => {
  seen.add(kind)
  if (need.every((k) => seen.has(k))) {
    emit('done')
    process.exit(0)
  }
}
setTimeout(() => {
  emit('timeout', { seen: [...seen] })
  process.exit(1)
}, 20000)

const supabase = createClient(API_URL, ANON_KEY, {
  realtime: {
    heartbeatIntervalMs: 500,
    heartbeatCallback: (status) => {
      if (status === 'ok') note('heartbeat-ok')
    },
  },
})
await supabase.realtime.setAuth(USER_JWT)
emit('socket', { url: supabase.realtime.endpointURL(), vsn: supabase.realtime.vsn })

const channel = supabase.channel('js-jobs', { config: { broadcast: { self: true } } })
channel
  .on(
    'postgres_changes',
    { event: 'UPDATE', schema: 'public', table: 'local_training_jobs', filter: `id=eq.${JOB_ID}` },
    (payload) => {
      emit('change', { payload })
      note('change')
    },
  )
  .on('broadcast', { event: 'ping' }, (message) => {
    emit('broadcast', { message })
    note('broadcast')
  })
  .on('system', {}, (message) => {
    emit('system', { message })
    if (message.status === 'ok' && message.extension === 'postgres_changes') {
      emit('ready')
      channel.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } })
    }
  })
  .subscribe((status, err) => emit('status', { status, error: err ? String(err) : null }))
