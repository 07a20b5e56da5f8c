"""Auth's state in PostgreSQL: users, identities, sessions and refresh tokens in GoTrue's ``auth.*`` tables.

Passwords are bcrypt hashes made by pgcrypto's ``crypt``, the format GoTrue
stores, so users seeded with ``crypt('pw', gen_salt('bf'))`` (a common
``seed.sql`` idiom) can sign in as on ``supabase start``. Refresh tokens rotate
as GoTrue's (v1, one row per token): see `rotate_refresh_token`.
"""

from __future__ import annotations

import json
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from liveparams_stack.auth.errors import AuthApiError

AUD = "authenticated"
# bcrypt cost: GoTrue uses 10; 4 keeps a development stack's sign-ups fast and the hash format the same.
BCRYPT_COST = 4
REFRESH_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
REFRESH_TOKEN_LENGTH = 12
EMAIL_PROVIDER = "email"
DEFAULT_APP_METADATA = {"provider": EMAIL_PROVIDER, "providers": [EMAIL_PROVIDER]}
USER_NOT_FOUND = AuthApiError(404, "user_not_found", "User not found")
DUPLICATE_EMAIL = AuthApiError(422, "email_exists", "A user with this email address has already been registered")

_USER_COLUMNS = (
    "id, aud, role, email, phone, email_confirmed_at, phone_confirmed_at, confirmed_at, invited_at, last_sign_in_at,"
    " raw_app_meta_data, raw_user_meta_data, is_anonymous, banned_until, created_at, updated_at"
)
Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class NewUser:
    """What a sign-up or an admin create sets on a user."""

    email: str | None
    password: str | None
    phone: str | None = None
    email_confirmed: bool = True
    user_metadata: dict[str, Any] | None = None
    app_metadata: dict[str, Any] | None = None
    role: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class Session:
    """A session and the refresh token just issued for it."""

    session_id: str
    refresh_token: str
    user: dict[str, Any]


async def create_user(conn: Conn, new: NewUser) -> dict[str, Any]:
    """Insert the user and its email identity; raise email_exists for a taken address."""
    app_metadata = {**DEFAULT_APP_METADATA, **(new.app_metadata or {})}
    try:
        async with conn.transaction():
            cursor = await conn.execute(
                "insert into auth.users (id, aud, role, email, phone, encrypted_password, email_confirmed_at,"
                " raw_app_meta_data, raw_user_meta_data)"
                " values (coalesce(%s::uuid, gen_random_uuid()), %s, coalesce(%s, %s), %s, %s,"
                " case when %s::text is null then null else extensions.crypt(%s, extensions.gen_salt('bf', %s)) end,"
                " case when %s then now() end, %s, %s) returning id",
                [new.user_id, AUD, new.role, AUD, new.email, new.phone, new.password, new.password, BCRYPT_COST,
                 new.email_confirmed, json.dumps(app_metadata), json.dumps(new.user_metadata or {})],
            )  # fmt: skip
            row = await cursor.fetchone()
            assert row is not None
            user_id = str(row[0])
            if new.email is not None:
                identity = {"sub": user_id, "email": new.email, "email_verified": False, "phone_verified": False}
                await conn.execute(
                    "insert into auth.identities (provider_id, user_id, identity_data, provider)"
                    " values (%s, %s, %s, %s)",
                    [user_id, user_id, json.dumps(identity), EMAIL_PROVIDER],
                )
    except psycopg.errors.UniqueViolation:
        raise DUPLICATE_EMAIL from None
    return await get_user(conn, user_id)


async def get_user(conn: Conn, user_id: str) -> dict[str, Any]:
    """The user as GoTrue renders it, with its identities; raise user_not_found."""
    try:
        uuid.UUID(user_id)
    except ValueError:
        raise AuthApiError(404, "validation_failed", "user_id must be an UUID") from None
    rows = await _users(conn, "where id = %s", [user_id])
    if not rows:
        raise USER_NOT_FOUND
    return rows[0]


async def find_user_by_email(conn: Conn, email: str) -> dict[str, Any] | None:
    rows = await _users(conn, "where email = %s", [email])
    return rows[0] if rows else None


async def check_password(conn: Conn, email: str, password: str) -> dict[str, Any] | None:
    """The user whose email and password these are, or None."""
    rows = await _users(
        conn,
        "where email = %s and encrypted_password is not null"
        " and encrypted_password = extensions.crypt(%s, encrypted_password)",
        [email, password],
    )
    return rows[0] if rows else None


async def list_users(conn: Conn, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
    """One page of users, newest first (GoTrue's default order), and the total."""
    users = await _users(conn, "order by created_at desc, id limit %s offset %s", [per_page, (page - 1) * per_page])
    cursor = await conn.execute("select count(*) from auth.users")
    row = await cursor.fetchone()
    return users, int(row[0]) if row else 0


async def update_user(
    conn: Conn,
    user_id: str,
    *,
    email: str | None = None,
    password: str | None = None,
    phone: str | None = None,
    user_metadata: dict[str, Any] | None = None,
    app_metadata: dict[str, Any] | None = None,
    email_confirmed: bool | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """Change what is given; metadata is merged key by key and a ``null`` value removes the key, as in GoTrue."""
    user = await get_user(conn, user_id)
    try:
        await conn.execute(
            "update auth.users set email = coalesce(%s, email), phone = coalesce(%s, phone),"
            " encrypted_password = case when %s::text is null then encrypted_password"
            "   else extensions.crypt(%s, extensions.gen_salt('bf', %s)) end,"
            " raw_user_meta_data = %s, raw_app_meta_data = %s, role = coalesce(%s, role),"
            " email_confirmed_at = case when %s::boolean is null then email_confirmed_at"
            "   when %s::boolean then coalesce(email_confirmed_at, now()) end,"
            " updated_at = now() where id = %s",
            [email, phone, password, password, BCRYPT_COST,
             json.dumps(_merge(user["user_metadata"], user_metadata)),
             json.dumps(_merge(user["app_metadata"], app_metadata)),
             role, email_confirmed, email_confirmed, user_id],
        )  # fmt: skip
    except psycopg.errors.UniqueViolation:
        raise DUPLICATE_EMAIL from None
    if email is not None:
        await conn.execute(
            "update auth.identities set identity_data = identity_data || jsonb_build_object('email', %s::text),"
            " updated_at = now() where user_id = %s and provider = %s",
            [email, user_id, EMAIL_PROVIDER],
        )
    return await get_user(conn, user_id)


async def delete_user(conn: Conn, user_id: str) -> None:
    """Delete the user; identities, sessions and their tokens go with it (foreign keys cascade)."""
    await get_user(conn, user_id)
    await conn.execute("delete from auth.refresh_tokens where user_id = %s", [user_id])
    await conn.execute("delete from auth.users where id = %s", [user_id])


async def start_session(conn: Conn, user_id: str, method: str) -> Session:
    """A new session signed in with ``method`` (``password``), its first refresh token, and the user."""
    session_id = str(uuid.uuid4())
    async with conn.transaction():
        await conn.execute("insert into auth.sessions (id, user_id) values (%s, %s)", [session_id, user_id])
        await conn.execute(
            "insert into auth.mfa_amr_claims (session_id, authentication_method) values (%s, %s)", [session_id, method]
        )
        token = await _issue_refresh_token(conn, user_id, session_id, parent=None)
        await conn.execute("update auth.users set last_sign_in_at = now() where id = %s", [user_id])
        await conn.execute(
            "update auth.identities set last_sign_in_at = now() where user_id = %s and provider = %s",
            [user_id, EMAIL_PROVIDER],
        )
    return Session(session_id, token, await get_user(conn, user_id))


async def rotate_refresh_token(conn: Conn, token: str, reuse_interval_s: float, revoke_on_reuse: bool) -> Session:
    """Exchange a refresh token for its successor, as GoTrue's refresh grant does (v1 tokens).

    A valid token is revoked and a child issued. A revoked one is answered with
    the session's current token when it is that token's parent (the client lost
    the answer); within ``reuse_interval_s`` of its revocation it still yields a
    new child (concurrent refreshes); later it is reuse: every token of the
    session is revoked (committed, when ``revoke_on_reuse``: config.toml's
    ``enable_refresh_token_rotation``) and ``refresh_token_already_used`` raised.
    """
    async with conn.transaction():
        outcome = await _rotate(conn, token, reuse_interval_s, revoke_on_reuse)
    if isinstance(outcome, AuthApiError):  # raised only now: the revocations above must commit
        raise outcome
    return outcome


async def _rotate(conn: Conn, token: str, reuse_interval_s: float, revoke_on_reuse: bool) -> Session | AuthApiError:
    cursor = await conn.execute(
        "select id, user_id, revoked, updated_at, session_id, now(),"
        " exists (select 1 from auth.sessions s where s.id = session_id)"
        " from auth.refresh_tokens where token = %s for update",
        [token],
    )
    row = await cursor.fetchone()
    if row is None:
        raise AuthApiError(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
    token_id, user_id, revoked, revoked_at, session_id, now, session_exists = row
    if not session_exists:
        await conn.execute("delete from auth.refresh_tokens where id = %s", [token_id])
        return AuthApiError(400, "session_not_found", "Invalid Refresh Token: No Valid Session Found")
    user = await get_user(conn, str(user_id))
    if _is_banned(user, now):
        raise AuthApiError(400, "user_banned", "Invalid Refresh Token: User Banned")
    issued: str | None = None
    if revoked:
        cursor = await conn.execute(
            "select token, parent from auth.refresh_tokens where session_id = %s and not revoked"
            " order by id desc limit 1",
            [session_id],
        )
        active = await cursor.fetchone()
        if active is not None and active[1] == token:
            issued = active[0]
        elif now > revoked_at + timedelta(seconds=reuse_interval_s):
            if revoke_on_reuse:
                await conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = now()"
                    " where session_id = %s and not revoked",
                    [session_id],
                )
            return AuthApiError(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used")
    if issued is None:
        await conn.execute(
            "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s", [token_id]
        )
        issued = await _issue_refresh_token(conn, str(user_id), str(session_id), parent=token)
    await conn.execute(
        "update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now() where id = %s",
        [session_id],
    )
    return Session(str(session_id), issued, user)


async def session_methods(conn: Conn, session_id: str) -> list[tuple[str, int]] | None:
    """The session's sign-in methods and when (the ``amr`` claim), or None when the session is gone."""
    cursor = await conn.execute(
        "select s.id is not null, c.authentication_method, extract(epoch from c.created_at)::bigint"
        " from (select %s::uuid as id) q left join auth.sessions s on s.id = q.id"
        " left join auth.mfa_amr_claims c on c.session_id = s.id",
        [session_id],
    )
    rows = await cursor.fetchall()
    if not rows or not rows[0][0]:
        return None
    return [(method, int(at)) for _, method, at in rows if method is not None]


async def end_sessions(conn: Conn, user_id: str, session_id: str | None, scope: str) -> None:
    """Log out: this session (``local``), all of the user's (``global``) or all but this one (``others``).

    A token without a session (minted, not signed in) ends them all, as GoTrue does.
    """
    if scope == "global" or session_id is None:
        await conn.execute("delete from auth.sessions where user_id = %s", [user_id])
    elif scope == "local":
        await conn.execute("delete from auth.sessions where user_id = %s and id = %s", [user_id, session_id])
    else:
        await conn.execute("delete from auth.sessions where user_id = %s and id <> %s", [user_id, session_id])


async def _issue_refresh_token(conn: Conn, user_id: str, session_id: str, parent: str | None) -> str:
    token = "".join(secrets.choice(REFRESH_TOKEN_ALPHABET) for _ in range(REFRESH_TOKEN_LENGTH))
    await conn.execute(
        "insert into auth.refresh_tokens (token, user_id, revoked, parent, session_id) values (%s, %s, false, %s, %s)",
        [token, user_id, parent, session_id],
    )
    return token


async def _users(conn: Conn, clause: str, params: list[Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(f"select {_USER_COLUMNS} from auth.users {clause}", params)
        rows = await cursor.fetchall()
        if not rows:
            return []
        await cursor.execute(
            "select id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email"
            " from auth.identities where user_id = any(%s) order by created_at",
            [[row["id"] for row in rows]],
        )
        identities: dict[Any, list[dict[str, Any]]] = {}
        for identity in await cursor.fetchall():
            identities.setdefault(identity["user_id"], []).append(_identity_json(identity))
    return [_user_json(row, identities.get(row["id"], [])) for row in rows]


def _user_json(row: dict[str, Any], identities: list[dict[str, Any]]) -> dict[str, Any]:
    """GoTrue's user object: optional timestamps are left out when unset, ``email``/``phone`` are ``""``."""
    user: dict[str, Any] = {
        "id": str(row["id"]),
        "aud": row["aud"] or "",
        "role": row["role"] or "",
        "email": row["email"] or "",
        "phone": row["phone"] or "",
    }
    for name in ("email_confirmed_at", "phone_confirmed_at", "confirmed_at", "invited_at", "last_sign_in_at"):
        if row[name] is not None:
            user[name] = _timestamp(row[name])
    user["app_metadata"] = row["raw_app_meta_data"] or {}
    user["user_metadata"] = row["raw_user_meta_data"] or {}
    user["identities"] = identities
    user["created_at"] = _timestamp(row["created_at"])
    user["updated_at"] = _timestamp(row["updated_at"])
    if row["banned_until"] is not None:
        user["banned_until"] = _timestamp(row["banned_until"])
    user["is_anonymous"] = row["is_anonymous"]
    return user


def _identity_json(row: dict[str, Any]) -> dict[str, Any]:
    identity = {
        "identity_id": str(row["id"]),
        "id": row["provider_id"],
        "user_id": str(row["user_id"]),
        "identity_data": row["identity_data"],
        "provider": row["provider"],
    }
    if row["last_sign_in_at"] is not None:
        identity["last_sign_in_at"] = _timestamp(row["last_sign_in_at"])
    identity.update(created_at=_timestamp(row["created_at"]), updated_at=_timestamp(row["updated_at"]))
    if row["email"]:
        identity["email"] = row["email"]
    return identity


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _merge(current: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(current)
    for key, value in (changes or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _is_banned(user: dict[str, Any], now: datetime) -> bool:
    banned_until = user.get("banned_until")
    return banned_until is not None and datetime.fromisoformat(banned_until.replace("Z", "+00:00")) > now
