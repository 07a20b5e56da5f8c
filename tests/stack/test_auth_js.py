"""``/auth/v1`` through the unmodified supabase-js from npm, as a web panel signs users in."""

from __future__ import annotations

import uuid

import pytest
from node_support import needs_node, run_supabase_js

pytestmark = [pytest.mark.stack, needs_node]

SCRIPT = """
import { createClient } from '@supabase/supabase-js'
const env = process.env
const options = { auth: { persistSession: false, autoRefreshToken: false } }
const panel = createClient(env.API_URL, env.ANON_KEY, options)
const admin = createClient(env.API_URL, env.SERVICE_ROLE_KEY, options).auth.admin
const out = {}
const created = await admin.createUser({ email: env.EMAIL, password: env.PASSWORD, email_confirm: true,
  app_metadata: { job_id: env.JOB_ID } })
out.created = created.error ?? created.data.user.app_metadata
const wrong = await panel.auth.signInWithPassword({ email: env.EMAIL, password: 'wrong-password' })
out.wrong = { status: wrong.error.status, code: wrong.error.code, name: wrong.error.name }
const signedIn = await panel.auth.signInWithPassword({ email: env.EMAIL, password: env.PASSWORD })
out.signedIn = signedIn.error ?? signedIn.data.user.email
out.claims = (await panel.auth.getClaims()).data.claims.app_metadata.job_id
out.user = (await panel.auth.getUser()).data.user.id === created.data.user.id
const refreshed = await panel.auth.refreshSession()
out.rotated = refreshed.data.session.refresh_token !== signedIn.data.session.refresh_token
out.updated = (await panel.auth.updateUser({ data: { theme: 'dark' } })).data.user.user_metadata
out.rls = (await panel.from('local_training_jobs').insert({ name: 'panel', status: 'running' })
  .select('user_id').single()).data.user_id === created.data.user.id
out.signOut = (await panel.auth.signOut()).error
const listed = await admin.listUsers({ page: 1, perPage: 1000 })
out.listed = listed.data.users.some((user) => user.id === created.data.user.id) && listed.data.total >= 1
out.deleted = (await admin.deleteUser(created.data.user.id)).error
console.log(JSON.stringify(out))
"""


def test_supabase_js_signs_in_refreshes_and_administers(stack_env: dict[str, str]) -> None:
    job_id = str(uuid.uuid4())
    env = {**stack_env, "EMAIL": f"{uuid.uuid4().hex}@liveparams.test", "PASSWORD": "panel-pass-1",
           "JOB_ID": job_id}  # fmt: skip
    out = run_supabase_js(SCRIPT, env)
    assert out["created"] == {"job_id": job_id, "provider": "email", "providers": ["email"]}
    assert out["wrong"] == {"status": 400, "code": "invalid_credentials", "name": "AuthApiError"}
    assert out["signedIn"] == env["EMAIL"] and out["claims"] == job_id and out["user"] is True
    assert out["rotated"] is True and out["updated"] == {"theme": "dark"} and out["rls"] is True
    assert out["signOut"] is None and out["listed"] is True and out["deleted"] is None
