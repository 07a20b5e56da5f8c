"""The package's names: each module says what it exports, every error derives from one root, and the one
error translator reads every exception the official clients raise for a failed call."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import httpx
import pytest
from postgrest.exceptions import APIError
from supabase_auth.errors import AuthApiError, AuthRetryableError

import liveparams
from liveparams import _supabase
from liveparams._exceptions import CommandError, LiveparamsError

# The package's own modules (the demo and the trainer side import torch: only their errors are checked here).
ROOT_MODULES = sorted(m.name for m in pkgutil.iter_modules(liveparams.__path__) if not m.ispkg)


def module(name: str) -> ModuleType:
    return importlib.import_module(f"liveparams.{name}")


@pytest.mark.parametrize("name", ROOT_MODULES)
def test_each_module_exports_what_it_defines(name: str) -> None:
    mod = module(name)
    defined = {
        key
        for key, value in vars(mod).items()
        if not key.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == mod.__name__
    }
    assert hasattr(mod, "__all__"), f"liveparams.{name} has no __all__"
    assert defined <= set(mod.__all__), defined - set(mod.__all__)
    assert all(hasattr(mod, export) for export in mod.__all__)


def test_every_error_has_one_root() -> None:
    from liveparams.agent import AgentError
    from liveparams.contract import InvalidParameter
    from liveparams.trainer_hooks._distributed import NotSent
    from liveparams_stack.errors import StackError

    errors = [AgentError, InvalidParameter, NotSent, StackError]
    for name in ROOT_MODULES:
        errors += [v for v in vars(module(name)).values() if inspect.isclass(v) and issubclass(v, Exception)]
    ours = [error for error in errors if error.__module__.startswith(("liveparams", "agent", "trainer_hooks"))]
    assert {error.__name__ for error in ours} >= {"CommandError", "CredentialError", "SignInError", "Unreachable"}
    assert [error for error in ours if not issubclass(error, LiveparamsError)] == []
    assert liveparams.LiveparamsError is LiveparamsError


def test_the_agent_imports_no_cli_code() -> None:
    """The translator and the exception root are shared; nothing of the CLI comes with them."""
    code = "import sys, liveparams.agent; print(' '.join(sys.modules))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    cli = {"liveparams.cli", "liveparams._api", "liveparams._live", "liveparams._client_config", "rich"}
    assert not {m for m in loaded if m in cli or m.startswith("liveparams._commands")}


@pytest.mark.parametrize(
    ("raised", "answered", "code"),
    [
        (APIError({"message": "denied", "code": "42501"}), True, "42501"),
        (AuthApiError("bad password", 400, "invalid_credentials"), True, "invalid_credentials"),
        (AuthRetryableError("no answer", 0), False, None),
        (httpx.ConnectError("refused"), False, None),
        (httpx.ReadTimeout("slow"), False, None),
    ],
)
def test_the_translator_reads_every_client_error(raised: Exception, answered: bool, code: str | None) -> None:
    assert isinstance(raised, _supabase.CLIENT_ERRORS)
    with pytest.raises(CommandError) as caught, _supabase.mapped_errors(lambda f: CommandError(repr(f))):
        raise raised
    assert caught.value.__cause__ is raised
    failure = _supabase.read_failure(raised)
    assert (failure.answered, failure.code, failure.kind) == (answered, code, type(raised).__name__)
    assert failure.transient is (not answered)  # 42501 and invalid_credentials are refusals


def test_the_package_root_exports_the_error_root() -> None:
    assert liveparams.__all__ == sorted(liveparams.__all__)
    assert "LiveparamsError" in liveparams.__all__ and set(liveparams.__all__) <= set(dir(liveparams))
