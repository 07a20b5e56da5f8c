"""The local Supabase stack: real PostgreSQL behind a Supabase-compatible REST and Realtime front.

For development and tests only (well-known keys, ``fsync=off``). ``agent`` and
``trainer_hooks`` never import it.
"""

from liveparams_stack.errors import StackError
from liveparams_stack.local import LocalStack

__all__ = ["LocalStack", "StackError"]
