// supabase-js broadcasts over REST, without joining: httpSend() (POST /api/broadcast/<topic>/events/<event>)
// and send() on a channel never subscribed (POST /api/broadcast with a batch of one message).
//
// Run by tests/stack/test_realtime_js.py. Input: API_URL, ANON_KEY, TOPIC in the environment.
// Output: one JSON line {"kind": "sent", "httpSend": ..., "send": ...} with what each call returned.
import { createClient } from '@supabase/supabase-js'

const { API_URL, ANON_KEY, TOPIC } = process.env
const supabase = createClient(API_URL, ANON_KEY)
const channel = supabase.channel(TOPIC)
let httpSend
try {
  httpSend = await channel.httpSend('via-http-send', { n: 1 })
} catch (error) {
  httpSend = { error: String(error) }
}
console.warn = () => {} // send()'s notice that it falls back to REST
const send = await channel.send({ type: 'broadcast', event: 'via-send', payload: { n: 2 } })
console.log(JSON.stringify({ kind: 'sent', httpSend, send }))
await supabase.removeChannel(channel)
process.exit(0)
