"""The public API of ``agent`` is what ``__all__`` says, sorted, and nothing heavy is imported before it is used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

from liveparams import agent


def isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions (the order ruff's RUF022 keeps ``__all__`` in)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    public = {
        name for name in dir(agent) if not name.startswith("_") and not isinstance(getattr(agent, name), ModuleType)
    }
    assert agent.__all__ == sorted(agent.__all__, key=isort_style)
    assert public == set(agent.__all__)


def test_exceptions_form_one_tree() -> None:
    errors = [getattr(agent, name) for name in agent.__all__ if name.endswith("Error")]
    assert all(issubclass(error, agent.AgentError) for error in errors)
    assert issubclass(agent.AgentClosedError, RuntimeError)


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``statement``."""
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo).stdout
    return set(out.split())


def test_agent_imports_neither_torch_nor_transformers_nor_the_stack() -> None:
    loaded = modules_after("import liveparams.agent")
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "transformers")}
    assert not {m for m in loaded if m.startswith("liveparams_stack")}


def test_the_contract_imports_no_network_client() -> None:
    """``liveparams.trainer_hooks`` imports ``liveparams.contract`` on every DDP rank; only rank 0 runs the agent."""
    loaded = modules_after("import liveparams.contract, liveparams.trainer_hooks")
    assert not {m for m in loaded if m.split(".")[0] in ("supabase", "realtime", "websockets", "httpx")}
