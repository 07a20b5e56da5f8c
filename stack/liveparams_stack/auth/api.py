"""``/auth/v1``: the subset of Supabase Auth (GoTrue) that supabase-py and supabase-js sign users in with.

Email sign-up (confirmed at once, as ``supabase start`` does by default), the
``password`` and ``refresh_token`` grants, ``GET``/``PUT /user``, ``logout``,
the admin users API, and ``/.well-known/jwks.json``. Access tokens carry
GoTrue's claims and are signed with the stack's JWT secret, so PostgREST-side
RLS and Realtime see the same ``auth.uid()`` as on a real project. Anything
else answers ``feature_disabled`` "not supported by the liveparams development
stack: …". Facts this relies on: docs/internals.md, "Local stack".
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from liveparams.tokens import mint_jwt
from liveparams_stack.auth import store
from liveparams_stack.auth.errors import AuthApiError, error_response, not_supported
from liveparams_stack.auth.settings import AuthSettings
from liveparams_stack.identity import AuthError, Identity, bearer_token, identify

logger = logging.getLogger(__name__)

PREFIX = "/auth/v1"
ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})
DEFAULT_PER_PAGE = 50
LOGOUT_SCOPES = ("global", "local", "others")
INVALID_LOGIN = AuthApiError(400, "invalid_credentials", "Invalid login credentials")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AuthApi:
    """The ``/auth/v1`` routes over a pool of connections that may write ``auth.*``."""

    def __init__(self, pool: AsyncConnectionPool, settings: AuthSettings) -> None:
        self._pool = pool
        self._settings = settings

    def add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/health", self._health),
            ("GET", "/settings", self._settings_route),
            ("GET", "/.well-known/jwks.json", self._jwks),
            ("POST", "/signup", self._signup),
            ("POST", "/token", self._token),
            ("GET", "/user", self._get_user),
            ("PUT", "/user", self._put_user),
            ("POST", "/logout", self._logout),
            ("GET", "/admin/users", self._admin_list),
            ("POST", "/admin/users", self._admin_create),
            ("GET", "/admin/users/{user_id}", self._admin_get),
            ("PUT", "/admin/users/{user_id}", self._admin_update),
            ("DELETE", "/admin/users/{user_id}", self._admin_delete),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, PREFIX + path, _answering_errors(handler))
        app.router.add_route("*", PREFIX + "/{rest:.*}", _answering_errors(self._unsupported))

    # -- public ----------------------------------------------------------------------------------

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"version": "liveparams-stack", "name": "GoTrue", "description": "GoTrue subset"})

    async def _settings_route(self, _: web.Request) -> web.Response:
        external = {"anonymous_users": False, "email": True, "phone": False}
        return web.json_response(
            {"external": external, "disable_signup": False, "mailer_autoconfirm": True, "phone_autoconfirm": False,
             "sms_provider": "", "saml_enabled": False}
        )  # fmt: skip

    async def _jwks(self, _: web.Request) -> web.Response:
        # GoTrue never publishes symmetric (HS256) keys, and the stack signs with its HS256 secret only.
        return web.json_response({"keys": []}, headers={"Cache-Control": "public, max-age=600"})

    async def _signup(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if not self._settings.signup_enabled:
            raise AuthApiError(422, "signup_disabled", "Signups not allowed for this instance")
        if not body.get("email") and not body.get("phone"):
            if not self._settings.anonymous_sign_ins:
                raise AuthApiError(422, "anonymous_provider_disabled", "Anonymous sign-ins are disabled")
            raise not_supported("anonymous sign-ins")
        if body.get("phone"):
            raise not_supported("phone sign-up")
        email, password = _email(body.get("email")), body.get("password")
        if not password:
            raise AuthApiError(400, "validation_failed", "Signup requires a valid password")
        self._check_password(password)
        confirmed = not self._settings.confirm_email
        async with self._pool.connection() as conn:
            if await store.find_user_by_email(conn, email) is not None:
                raise AuthApiError(422, "user_already_exists", "User already registered")
            new = store.NewUser(email, password, email_confirmed=confirmed, user_metadata=_object(body, "data"))
            user = await store.create_user(conn, new)
            if not confirmed:  # GoTrue would mail a link; the stack sends no mail, so the user stays unconfirmed
                return web.json_response(user)
            session = await store.start_session(conn, user["id"], "password")
        logger.info("signed up user %s", user["id"])
        return web.json_response(await self._session_body(request, session))

    async def _token(self, request: web.Request) -> web.Response:
        grant = request.rel_url.query.get("grant_type", "")
        body = await _json(request)
        if grant == "password":
            if body.get("phone"):
                raise not_supported("phone sign-in")
            if not body.get("email"):
                raise AuthApiError(400, "validation_failed", "missing email or phone")
            async with self._pool.connection() as conn:
                user = await store.check_password(conn, _email(body["email"]), str(body.get("password") or ""))
                if user is None:
                    raise INVALID_LOGIN
                if "email_confirmed_at" not in user:
                    raise AuthApiError(400, "email_not_confirmed", "Email not confirmed")
                session = await store.start_session(conn, user["id"], "password")
        elif grant == "refresh_token":
            token = body.get("refresh_token")
            if not token:
                raise AuthApiError(400, "validation_failed", "refresh_token required")
            async with self._pool.connection() as conn:
                session = await store.rotate_refresh_token(
                    conn, str(token), self._settings.reuse_interval_s, self._settings.refresh_token_rotation
                )
        elif grant in ("pkce", "id_token", "web3"):
            raise not_supported(f"grant_type={grant}")
        else:
            raise AuthApiError(400, "invalid_credentials", "unsupported_grant_type")
        return web.json_response(await self._session_body(request, session))

    # -- the signed-in user ----------------------------------------------------------------------

    async def _get_user(self, request: web.Request) -> web.Response:
        identity = self._user_identity(request)
        async with self._pool.connection() as conn:
            return web.json_response(await self._current_user(conn, identity))

    async def _put_user(self, request: web.Request) -> web.Response:
        identity = self._user_identity(request)
        body = await _json(request)
        if body.get("app_metadata") is not None and identity.role not in ADMIN_ROLES:
            raise AuthApiError(403, "not_admin", "Updating app_metadata requires admin privileges")
        if body.get("phone") or body.get("nonce"):
            raise not_supported("changing the phone number or reauthentication")
        password = body.get("password")
        if password is not None:
            self._check_password(password)
        async with self._pool.connection() as conn:
            user = await self._current_user(conn, identity)
            if password is not None and await store.check_password(conn, user["email"], password) is not None:
                raise AuthApiError(422, "same_password", "New password should be different from the old password.")
            email = _email(body["email"]) if body.get("email") else None
            if email is not None and email != user["email"]:
                other = await store.find_user_by_email(conn, email)
                if other is not None:
                    raise store.DUPLICATE_EMAIL
            user = await store.update_user(
                conn, user["id"], email=email, password=password, user_metadata=_object(body, "data")
            )
        return web.json_response(user)

    async def _logout(self, request: web.Request) -> web.Response:
        scope = request.rel_url.query.get("scope", "global")
        if scope not in LOGOUT_SCOPES:
            raise AuthApiError(400, "validation_failed", f'Unsupported logout scope "{scope}"')
        identity = self._user_identity(request)
        async with self._pool.connection() as conn:
            user = await self._current_user(conn, identity)
            session_id = identity.claims.get("session_id")
            await store.end_sessions(conn, user["id"], str(session_id) if session_id else None, scope)
        return web.Response(status=204)

    # -- admin -----------------------------------------------------------------------------------

    async def _admin_list(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        query = request.rel_url.query
        if query.get("filter") or query.get("sort"):
            raise not_supported("filtering or sorting the admin user list")
        page, per_page = _positive(query, "page", 1), _positive(query, "per_page", DEFAULT_PER_PAGE)
        async with self._pool.connection() as conn:
            users, total = await store.list_users(conn, page, per_page)
        pages = max(1, -(-total // per_page))
        base = request.url.with_query({**query, "per_page": str(per_page)})
        links = [f'<{base.update_query(page=str(page + 1))}>; rel="next"'] if page < pages else []
        links.append(f'<{base.update_query(page=str(pages))}>; rel="last"')
        headers = {"X-Total-Count": str(total), "Link": ", ".join(links)}
        return web.json_response({"users": users, "aud": store.AUD}, headers=headers)

    async def _admin_create(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        body = await _json(request)
        unsupported = [name for name in ("password_hash", "ban_duration", "phone") if body.get(name)]
        if unsupported:
            raise not_supported(f"admin create_user with {', '.join(unsupported)}")
        if not body.get("email"):
            raise AuthApiError(400, "validation_failed", "Cannot create a user without either an email or phone")
        if body.get("password") is not None:
            self._check_password(body["password"])
        new = store.NewUser(
            email=_email(body["email"]),
            password=body.get("password"),
            email_confirmed=bool(body.get("email_confirm")),
            user_metadata=_object(body, "user_metadata") or _object(body, "data"),
            app_metadata=_object(body, "app_metadata"),
            role=body.get("role"),
            user_id=body.get("id"),
        )
        async with self._pool.connection() as conn:
            user = await store.create_user(conn, new)
        logger.info("created user %s through the admin API", user["id"])
        return web.json_response(user)

    async def _admin_get(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        async with self._pool.connection() as conn:
            return web.json_response(await store.get_user(conn, request.match_info["user_id"]))

    async def _admin_update(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        body = await _json(request)
        unsupported = [name for name in ("password_hash", "phone", "nonce") if body.get(name)]
        if body.get("ban_duration") not in (None, "none"):
            unsupported.append("ban_duration")
        if unsupported:
            raise not_supported(f"admin update_user with {', '.join(unsupported)}")
        if body.get("password") is not None:
            self._check_password(body["password"])
        async with self._pool.connection() as conn:
            user = await store.update_user(
                conn,
                request.match_info["user_id"],
                email=_email(body["email"]) if body.get("email") else None,
                password=body.get("password"),
                user_metadata=_object(body, "user_metadata"),
                app_metadata=_object(body, "app_metadata"),
                email_confirmed=body.get("email_confirm"),
                role=body.get("role"),
            )
        return web.json_response(user)

    async def _admin_delete(self, request: web.Request) -> web.Response:
        self._require_admin(request)
        if (await _json(request)).get("should_soft_delete"):
            raise not_supported("soft-deleting users")
        async with self._pool.connection() as conn:
            await store.delete_user(conn, request.match_info["user_id"])
        logger.info("deleted user %s through the admin API", request.match_info["user_id"])
        return web.json_response({})

    async def _unsupported(self, request: web.Request) -> web.Response:
        raise not_supported(f"{request.method} {request.path}")

    # -- plumbing --------------------------------------------------------------------------------

    def _check_password(self, password: Any) -> None:
        minimum = self._settings.min_password_length
        if not isinstance(password, str) or len(password) < minimum:
            raise AuthApiError(
                422, "weak_password", f"Password should be at least {minimum} characters.", reasons=["length"]
            )

    def _identity(self, request: web.Request) -> Identity:
        if bearer_token(request.headers) is None:
            raise AuthApiError(401, "no_authorization", "This endpoint requires a valid Bearer token")
        try:
            return identify(request.headers, self._settings.jwt_secret)
        except AuthError as exc:
            raise AuthApiError(
                403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {exc.message}"
            ) from None

    def _user_identity(self, request: web.Request) -> Identity:
        identity = self._identity(request)
        if not identity.claims.get("sub"):
            raise AuthApiError(403, "bad_jwt", "invalid claim: missing sub claim")
        return identity

    def _require_admin(self, request: web.Request) -> None:
        if self._identity(request).role not in ADMIN_ROLES:
            raise AuthApiError(403, "not_admin", "User not allowed")

    async def _current_user(self, conn: store.Conn, identity: Identity) -> dict[str, Any]:
        """The token's user, refused as GoTrue refuses tokens whose user or session is gone."""
        try:
            user = await store.get_user(conn, str(identity.claims["sub"]))
        except AuthApiError:
            raise AuthApiError(403, "user_not_found", "User from sub claim in JWT does not exist") from None
        session_id = identity.claims.get("session_id")
        if session_id and await store.session_methods(conn, str(session_id)) is None:
            raise AuthApiError(403, "session_not_found", "Session from session_id claim in JWT does not exist")
        return user

    async def _session_body(self, request: web.Request, session: store.Session) -> dict[str, Any]:
        """GoTrue's AccessTokenResponse for ``session``, with a fresh access token."""
        async with self._pool.connection() as conn:
            methods = await store.session_methods(conn, session.session_id) or []
        user = session.user
        ttl = self._settings.jwt_expiry_s
        claims = {
            "iss": f"{request.scheme}://{request.host}{PREFIX}",
            "sub": user["id"],
            "aud": user["aud"],
            "email": user["email"],
            "phone": user["phone"],
            "app_metadata": user["app_metadata"],
            "user_metadata": user["user_metadata"],
            "role": user["role"],
            "aal": "aal1",
            "amr": [{"method": method, "timestamp": at} for method, at in methods],
            "session_id": session.session_id,
            "is_anonymous": user["is_anonymous"],
        }
        access_token = mint_jwt(claims, self._settings.jwt_secret, expires_in=ttl)
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": ttl,
            "expires_at": int(time.time()) + ttl,
            "refresh_token": session.refresh_token,
            "user": user,
        }


def _answering_errors(handler: Handler) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AuthApiError as error:
            if error.status >= 500:
                logger.warning("auth %s %s: %s", request.method, request.path, error.message)
            return error_response(request, error)

    return answer


async def _json(request: web.Request) -> dict[str, Any]:
    raw = await request.text()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise AuthApiError(400, "bad_json", "Could not parse request body as JSON") from None
    if not isinstance(body, dict):
        raise AuthApiError(400, "bad_json", "Could not parse request body as JSON")
    return body


def _object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise AuthApiError(400, "bad_json", f"{name} must be a JSON object")
    return value


def _email(value: Any) -> str:
    """GoTrue's check: a plausible address, stored lower-case."""
    email = str(value or "").strip().lower()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain) or len(email) > 255:
        raise AuthApiError(400, "email_address_invalid", f'Email address "{value}" is invalid')
    return email


def _positive(query: Any, name: str, default: int) -> int:
    text = query.get(name)
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise AuthApiError(400, "validation_failed", f"Bad Pagination Parameters: invalid {name}")
    return int(text)


__all__ = ["AuthApi", "AuthSettings"]
