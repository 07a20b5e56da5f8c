"""Auth errors in GoTrue's two wire shapes, chosen by the ``X-Supabase-Api-Version`` request header.

Clients that send ``X-Supabase-Api-Version: 2024-01-01`` (supabase-js,
supabase-py) get ``{"code": <error_code>, "message": ...}`` and the header
echoed back; older ones get ``{"code": <status>, "error_code": ..., "msg": ...}``.
Both carry ``x-sb-error-code``. See docs/internals.md, "Local stack".
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024 = "2024-01-01"
NOT_SUPPORTED = "not supported by the liveparams development stack: "


class AuthApiError(Exception):
    """An error GoTrue answers with ``status``, its ``error_code`` and message."""

    def __init__(self, status: int, error_code: str, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.reasons = reasons  # weak_password only: which rules the password broke


def not_supported(feature: str) -> AuthApiError:
    """What every Auth feature the stack lacks answers, instead of a different result."""
    return AuthApiError(501, "feature_disabled", NOT_SUPPORTED + feature)


def error_response(request: web.Request, error: AuthApiError) -> web.Response:
    """Render ``error`` in the shape the requesting client asked for."""
    headers = {"x-sb-error-code": error.error_code}
    body: dict[str, Any]
    if request.headers.get(API_VERSION_HEADER, "") >= API_VERSION_2024:
        headers[API_VERSION_HEADER] = API_VERSION_2024
        body = {"code": error.error_code, "message": error.message}
    else:
        body = {"code": error.status, "error_code": error.error_code, "msg": error.message}
    if error.reasons is not None:
        body["weak_password"] = {"reasons": error.reasons}
    return web.json_response(body, status=error.status, headers=headers)


__all__ = ["API_VERSION_2024", "API_VERSION_HEADER", "AuthApiError", "error_response", "not_supported"]
