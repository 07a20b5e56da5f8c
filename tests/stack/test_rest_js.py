"""The REST front through the unmodified supabase-js from npm, run by node."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from node_support import needs_node, run_supabase_js

pytestmark = [pytest.mark.stack, needs_node]

SCRIPT = """
import { createClient } from '@supabase/supabase-js'
const env = process.env
const svc = createClient(env.API_URL, env.SERVICE_ROLE_KEY)
const owner = createClient(env.API_URL, env.ANON_KEY,
  { global: { headers: { Authorization: `Bearer ${env.OWNER_JWT}` } } })
const out = {}
const inserted = await svc.from('local_training_jobs')
  .insert({ user_id: env.OWNER_ID, name: 'js', status: 'running' }).select()
const id = inserted.data[0].id
out.single = (await owner.from('local_training_jobs').select('id, name').eq('id', id).single()).data
out.request = (await owner.rpc('request_parameter_update', { p_job_id: id, p_params: { learning_rate: 1e-4 } })).data
const refused = await owner.rpc('request_parameter_update', { p_job_id: id, p_params: { nope: 1 } })
out.refused = { status: refused.status, code: refused.error.code, message: refused.error.message }
out.updated = (await svc.from('local_training_jobs').update({ name: 'js2' }).eq('id', id).select('name')).data
out.upserted = (await svc.from('local_training_jobs')
  .upsert({ id, user_id: env.OWNER_ID, name: 'js3', status: 'running' }).select('name')).data
const counted = await svc.from('local_training_jobs')
  .select('id', { count: 'exact', head: true }).eq('user_id', env.OWNER_ID)
out.count = counted.count
out.listed = (await owner.from('local_training_jobs').select('name')
  .in('status', ['running', 'queued']).order('name', { ascending: false }).limit(5)).data
out.deleted = (await svc.from('local_training_jobs').delete().eq('id', id)).status
console.log(JSON.stringify(out))
"""


def test_supabase_js_reads_writes_and_calls(stack_env: dict[str, str], new_user: Callable[[], tuple[str, str]]) -> None:
    owner_id, owner_jwt = new_user()
    out = run_supabase_js(SCRIPT, {**stack_env, "OWNER_ID": owner_id, "OWNER_JWT": owner_jwt})
    assert out["single"]["name"] == "js"
    assert out["request"]["learning_rate"] == 1e-4 and out["request"]["requested_by"] == owner_id
    assert out["refused"]["status"] == 400 and out["refused"]["code"] == "22023"
    assert 'unknown parameter "nope"' in out["refused"]["message"]
    assert out["updated"] == [{"name": "js2"}] and out["upserted"] == [{"name": "js3"}]
    assert out["count"] == 1 and out["listed"] == [{"name": "js3"}]
    assert out["deleted"] == 204
