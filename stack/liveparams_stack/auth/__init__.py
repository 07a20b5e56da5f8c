"""``/auth/v1``: a Supabase Auth (GoTrue) subset backed by GoTrue's ``auth.*`` tables."""

from liveparams_stack.auth.api import AuthApi
from liveparams_stack.auth.settings import AuthSettings

__all__ = ["AuthApi", "AuthSettings"]
