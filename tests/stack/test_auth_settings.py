"""Auth's knobs come from supabase/config.toml, as `supabase start` reads them (no stack needed)."""

from __future__ import annotations

from pathlib import Path

from liveparams_stack.auth import AuthSettings
from liveparams_stack.local import find_project_dir

SECRET = "s" * 40


def test_the_projects_config_toml_is_read() -> None:
    settings = AuthSettings.from_config(find_project_dir() / "supabase" / "config.toml", SECRET)
    assert settings == AuthSettings(SECRET, jwt_expiry_s=3600, refresh_token_rotation=True, reuse_interval_s=10.0,
                                    signup_enabled=True, anonymous_sign_ins=False, min_password_length=6,
                                    confirm_email=False)  # fmt: skip


def test_keys_set_in_config_toml_win_and_missing_ones_take_the_cli_defaults(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[auth]\njwt_expiry = 600\nenable_signup = false\nminimum_password_length = 12\n"
        "[auth.email]\nenable_confirmations = true\n"
    )
    settings = AuthSettings.from_config(config, SECRET)
    assert (settings.jwt_expiry_s, settings.signup_enabled, settings.min_password_length) == (600, False, 12)
    assert settings.confirm_email and settings.reuse_interval_s == 10.0 and not settings.anonymous_sign_ins
    assert AuthSettings.from_config(tmp_path / "missing.toml", SECRET) == AuthSettings(SECRET)
