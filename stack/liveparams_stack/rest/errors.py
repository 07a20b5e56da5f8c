"""PostgREST's error answers: the ``{code, details, hint, message}`` body, and the HTTP status for a SQLSTATE."""

from __future__ import annotations

import psycopg

from liveparams_stack.identity import ANON_ROLE

__all__ = ["NOT_SUPPORTED", "PostgrestError", "status_for_sqlstate"]

NOT_SUPPORTED = "not supported by the liveparams development stack: "
# PostgREST's SQLSTATE -> HTTP status table (docs/references/errors.rst); anything else is 400.
_STATUS_BY_CODE = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400, "42883": 404, "42P01": 404,
                   "42P17": 500}  # fmt: skip
_STATUS_BY_CLASS = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
                    "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
                    "P0": 500, "XX": 500}  # fmt: skip


class PostgrestError(Exception):
    """An error answered in PostgREST's shape: ``{code, details, hint, message}`` with its status."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "details": details, "hint": hint, "message": message}

    @classmethod
    def not_supported(cls, feature: str) -> PostgrestError:
        """What every PostgREST feature the stack lacks answers, instead of a different result."""
        return cls(501, "PGRST501", NOT_SUPPORTED + feature,
                   hint="Run this request against `supabase start`, or use the subset in docs/testing.md.")  # fmt: skip

    @classmethod
    def from_database(cls, exc: psycopg.Error, role: str) -> PostgrestError:
        diag = exc.diag
        code = diag.sqlstate
        if code is None:  # no answer from the server at all: the connection or the pool failed
            return cls(503, "PGRST001", f"Database client error: {exc}")
        return cls(status_for_sqlstate(code, role), code, diag.message_primary or str(exc), diag.message_detail,
                   diag.message_hint)  # fmt: skip


def status_for_sqlstate(code: str, role: str) -> int:
    """The HTTP status PostgREST answers a database error with."""
    if code == "42501":
        return 401 if role == ANON_ROLE else 403
    if code.startswith("PT") and code[2:].isdigit():
        return int(code[2:])
    return _STATUS_BY_CODE.get(code) or _STATUS_BY_CLASS.get(code[:2], 400)
