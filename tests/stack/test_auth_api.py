"""``/auth/v1`` through the unmodified supabase-py Auth client, as a UI or a trainer's backend uses it.

Every test also runs against a real Supabase (see tests/conftest.py); the ones
that need the database directly skip without ``DB_URL``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from auth_helpers import auth_client
from postgrest import SyncPostgrestClient
from supabase_auth import SyncGoTrueClient
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

pytestmark = pytest.mark.stack

PASSWORD = "correct-horse-1"
TABLE = "local_training_jobs"


@pytest.fixture
def anon(stack_env: dict[str, str]) -> SyncGoTrueClient:
    return auth_client(stack_env, stack_env["ANON_KEY"])


@pytest.fixture
def admin(stack_env: dict[str, str]) -> Any:
    return auth_client(stack_env, stack_env["SERVICE_ROLE_KEY"]).admin


def _email() -> str:
    return f"{uuid.uuid4().hex}@liveparams.test"


def _claims(stack_env: dict[str, str], token: str) -> dict[str, Any]:
    return jwt.decode(token, stack_env["JWT_SECRET"], algorithms=["HS256"], audience="authenticated")


def test_sign_up_gives_a_session_whose_token_rls_accepts(stack_env: dict[str, str], anon: SyncGoTrueClient) -> None:
    email = _email()
    signed_up = anon.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"team": "a"}}})
    assert signed_up.session is not None and signed_up.user is not None
    user_id = signed_up.user.id
    assert signed_up.user.email == email and signed_up.user.user_metadata == {"team": "a"}
    assert signed_up.user.app_metadata == {"provider": "email", "providers": ["email"]}

    claims = _claims(stack_env, signed_up.session.access_token)
    assert {key: claims[key] for key in ("sub", "aud", "role", "email", "is_anonymous", "aal")} == {
        "sub": user_id, "aud": "authenticated", "role": "authenticated", "email": email, "is_anonymous": False,
        "aal": "aal1",
    }  # fmt: skip
    assert claims["iss"].endswith("/auth/v1") and claims["exp"] - claims["iat"] == signed_up.session.expires_in
    assert claims["session_id"] and [entry["method"] for entry in claims["amr"]] == ["password"]
    assert claims["user_metadata"] == {"team": "a"} and claims["app_metadata"]["provider"] == "email"

    rest = SyncPostgrestClient(stack_env["REST_URL"], headers={"apikey": stack_env["ANON_KEY"]})
    rest.auth(signed_up.session.access_token)
    created = rest.from_(TABLE).insert({"name": "mine", "status": "running"}).execute().data
    assert created[0]["user_id"] == user_id  # the column defaults to auth.uid()


def test_password_sign_in_and_its_refusals(anon: SyncGoTrueClient, admin: Any) -> None:
    email = _email()
    admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True})
    session = anon.sign_in_with_password({"email": email.upper(), "password": PASSWORD}).session
    assert session is not None and session.user.email == email and session.token_type == "bearer"

    for credentials in ({"email": email, "password": "wrong-password"}, {"email": _email(), "password": PASSWORD}):
        with pytest.raises(AuthApiError) as refused:
            anon.sign_in_with_password(credentials)  # type: ignore[arg-type]
        assert (refused.value.status, refused.value.code) == (400, "invalid_credentials")
        assert refused.value.message == "Invalid login credentials"
    with pytest.raises(AuthApiError) as taken:
        anon.sign_up({"email": email, "password": PASSWORD})
    assert (taken.value.status, taken.value.code) == (422, "user_already_exists")
    with pytest.raises(AuthApiError) as anonymous:  # off by default in supabase/config.toml
        anon.sign_in_anonymously()
    assert (anonymous.value.status, anonymous.value.code) == (422, "anonymous_provider_disabled")
    with pytest.raises(AuthWeakPasswordError) as weak:
        anon.sign_up({"email": _email(), "password": "123"})
    assert weak.value.status == 422 and weak.value.reasons == ["length"]


def test_the_user_reads_and_updates_itself_but_not_its_app_metadata(
    stack_env: dict[str, str], anon: SyncGoTrueClient
) -> None:
    session = anon.sign_up({"email": _email(), "password": PASSWORD, "options": {"data": {"a": 1, "b": 2}}}).session
    assert session is not None
    anon.set_session(session.access_token, session.refresh_token)
    got = anon.get_user()
    assert got is not None and got.user.id == session.user.id
    updated = anon.update_user({"data": {"b": None, "c": 3}}).user
    assert updated.user_metadata == {"a": 1, "c": 3}  # merged key by key; null removes, as GoTrue does
    with pytest.raises(AuthApiError) as same:
        anon.update_user({"password": PASSWORD})
    assert (same.value.status, same.value.code) == (422, "same_password")
    anon.update_user({"password": PASSWORD + "-new"})
    assert anon.sign_in_with_password({"email": session.user.email or "", "password": PASSWORD + "-new"}).session

    response = httpx.put(
        f"{stack_env['API_URL']}/auth/v1/user",
        json={"app_metadata": {"job_id": "forged"}},
        headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {session.access_token}"},
    )
    assert response.status_code == 403 and response.json()["error_code"] == "not_admin"


def test_refresh_rotates_the_token_and_detects_reuse(
    stack_env: dict[str, str], anon: SyncGoTrueClient, db: psycopg.Connection[Any]
) -> None:
    first = anon.sign_up({"email": _email(), "password": PASSWORD}).session
    assert first is not None
    second = anon.refresh_session(first.refresh_token).session
    assert second is not None and second.refresh_token != first.refresh_token
    assert _claims(stack_env, second.access_token)["session_id"] == _claims(stack_env, first.access_token)["session_id"]
    # The client lost the answer: the parent of the current token gets the current token back.
    again = anon.refresh_session(first.refresh_token).session
    assert again is not None and again.refresh_token == second.refresh_token
    third = anon.refresh_session(second.refresh_token).session
    assert third is not None

    session_id = _claims(stack_env, first.access_token)["session_id"]
    _age_tokens(db, session_id)  # past the 10 s reuse interval
    with pytest.raises(AuthApiError) as reused:
        anon.refresh_session(first.refresh_token)
    assert (reused.value.status, reused.value.code) == (400, "refresh_token_already_used")
    _age_tokens(db, session_id)
    with pytest.raises(AuthApiError) as revoked:  # reuse revoked the whole session's family
        anon.refresh_session(third.refresh_token)
    assert revoked.value.code == "refresh_token_already_used"
    with pytest.raises(AuthApiError) as unknown:
        anon.refresh_session("not-a-refresh-token")
    assert unknown.value.code == "refresh_token_not_found"


def _age_tokens(db: psycopg.Connection[Any], session_id: str) -> None:
    db.execute(
        "update auth.refresh_tokens set updated_at = updated_at - interval '1 minute' where session_id = %s",
        [session_id],
    )


def test_sign_out_ends_the_session(stack_env: dict[str, str], anon: SyncGoTrueClient) -> None:
    email = _email()
    session = anon.sign_up({"email": email, "password": PASSWORD}).session
    assert session is not None
    laptop = auth_client(stack_env, stack_env["ANON_KEY"])
    other = laptop.sign_in_with_password({"email": email, "password": PASSWORD}).session
    assert other is not None
    anon.set_session(session.access_token, session.refresh_token)
    anon.sign_out({"scope": "others"})  # ends the laptop's session only
    with pytest.raises(AuthApiError):
        laptop.refresh_session(other.refresh_token)
    refreshed = anon.refresh_session().session
    assert refreshed is not None
    session = refreshed
    anon.sign_out()
    with pytest.raises(AuthApiError) as refused:
        anon.refresh_session(session.refresh_token)
    assert refused.value.code == "refresh_token_not_found"
    with pytest.raises(AuthApiError) as gone:
        anon.get_user(session.access_token)
    assert (gone.value.status, gone.value.code) == (403, "session_not_found")


def test_admin_api_manages_users_and_app_metadata_reaches_the_token(
    stack_env: dict[str, str], anon: SyncGoTrueClient, admin: Any, new_user: Callable[..., tuple[str, str]]
) -> None:
    job_id = str(uuid.uuid4())
    user_id, token = new_user(app_metadata={"job_id": job_id}, user_metadata={"kind": "trainer"})
    assert _claims(stack_env, token)["app_metadata"]["job_id"] == job_id
    assert _claims(stack_env, token)["user_metadata"] == {"kind": "trainer"}

    fetched = admin.get_user_by_id(user_id).user
    assert fetched.app_metadata == {"provider": "email", "providers": ["email"], "job_id": job_id}
    assert fetched.email_confirmed_at is not None and fetched.identities[0].provider == "email"
    updated = admin.update_user_by_id(user_id, {"app_metadata": {"job_id": None, "run": 2}}).user
    assert updated.app_metadata == {"provider": "email", "providers": ["email"], "run": 2}
    listed = admin.list_users(page=1, per_page=1000)
    assert user_id in {user.id for user in listed}

    admin.delete_user(user_id)
    with pytest.raises(AuthApiError) as missing:
        admin.get_user_by_id(user_id)
    assert (missing.value.status, missing.value.code) == (404, "user_not_found")
    with pytest.raises(AuthApiError) as gone:
        anon.get_user(token)
    assert gone.value.code == "user_not_found"


def test_the_admin_api_refuses_users_and_duplicates(
    stack_env: dict[str, str], admin: Any, new_user: Callable[..., tuple[str, str]]
) -> None:
    _, token = new_user()
    as_user = SyncGoTrueClient(
        url=f"{stack_env['API_URL']}/auth/v1",
        headers={"apikey": stack_env["ANON_KEY"], "Authorization": f"Bearer {token}"},
        auto_refresh_token=False,
        persist_session=False,
    )
    with pytest.raises(AuthApiError) as refused:
        as_user.admin.list_users()
    assert (refused.value.status, refused.value.code) == (403, "not_admin")
    email = _email()
    admin.create_user({"email": email})
    with pytest.raises(AuthApiError) as duplicate:
        admin.create_user({"email": email})
    assert (duplicate.value.status, duplicate.value.code) == (422, "email_exists")


def test_errors_take_the_legacy_shape_without_an_api_version(stack_env: dict[str, str]) -> None:
    response = httpx.post(
        f"{stack_env['API_URL']}/auth/v1/token?grant_type=password",
        json={"email": _email(), "password": PASSWORD},
        headers={"apikey": stack_env["ANON_KEY"]},
    )
    assert response.status_code == 400
    assert response.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}


def test_jwks_publishes_no_symmetric_key(stack_env: dict[str, str]) -> None:
    response = httpx.get(f"{stack_env['API_URL']}/auth/v1/.well-known/jwks.json")
    assert response.status_code == 200
    assert all(key.get("kty") != "oct" for key in response.json()["keys"])


def test_unsupported_auth_features_say_so(local_stack: object, anon: SyncGoTrueClient) -> None:
    if local_stack is None:
        pytest.skip("a real Supabase supports these")
    with pytest.raises(AuthApiError) as refused:
        anon.sign_in_with_otp({"email": _email()})
    assert refused.value.code == "feature_disabled"
    assert refused.value.message == "not supported by the liveparams development stack: POST /auth/v1/otp"
