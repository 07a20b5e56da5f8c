"""Auth's settings, read from the project's ``supabase/config.toml`` as ``supabase start`` reads them.

Keys the file leaves out take the CLI's defaults, so the stack and ``supabase
start`` agree on token lifetime, rotation, sign-up and password rules.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class AuthSettings:
    """The ``[auth]`` knobs the stack's Auth honours (defaults: the Supabase CLI's)."""

    jwt_secret: str
    jwt_expiry_s: int = 3600  # [auth] jwt_expiry
    refresh_token_rotation: bool = True  # [auth] enable_refresh_token_rotation
    reuse_interval_s: float = 10.0  # [auth] refresh_token_reuse_interval
    signup_enabled: bool = True  # [auth] enable_signup
    anonymous_sign_ins: bool = False  # [auth] enable_anonymous_sign_ins
    min_password_length: int = 6  # [auth] minimum_password_length
    confirm_email: bool = False  # [auth.email] enable_confirmations

    @classmethod
    def from_config(cls, config_toml: Path | None, jwt_secret: str) -> AuthSettings:
        """Settings from ``config_toml`` (``supabase/config.toml``); the defaults when there is none."""
        if config_toml is None or not config_toml.is_file():
            return cls(jwt_secret)
        auth: dict[str, Any] = tomllib.loads(config_toml.read_text(encoding="utf-8")).get("auth", {})
        email: dict[str, Any] = auth.get("email", {})
        defaults = cls(jwt_secret)
        return cls(
            jwt_secret,
            jwt_expiry_s=int(auth.get("jwt_expiry", defaults.jwt_expiry_s)),
            refresh_token_rotation=bool(auth.get("enable_refresh_token_rotation", defaults.refresh_token_rotation)),
            reuse_interval_s=float(auth.get("refresh_token_reuse_interval", defaults.reuse_interval_s)),
            signup_enabled=bool(auth.get("enable_signup", defaults.signup_enabled)),
            anonymous_sign_ins=bool(auth.get("enable_anonymous_sign_ins", defaults.anonymous_sign_ins)),
            min_password_length=int(auth.get("minimum_password_length", defaults.min_password_length)),
            confirm_email=bool(email.get("enable_confirmations", defaults.confirm_email)),
        )


__all__ = ["AuthSettings"]
