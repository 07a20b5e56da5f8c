"""The docs that describe the code must match it: parameters, bounds in the database, configuration."""

from __future__ import annotations

import re
from typing import Any

import pytest
from supabase import create_client

from liveparams import paramdoc
from liveparams.contract import PARAMETERS, ParameterSpec


def test_docs_parameter_table_is_current() -> None:
    text = paramdoc.DOC.read_text(encoding="utf-8")
    assert text == paramdoc.rewrite(text), "docs/parameters.md is stale: run python -m liveparams.paramdoc"
    for name in PARAMETERS:
        assert f"| `{name}` |" in text


def _as_sql_spec(spec: ParameterSpec) -> dict[str, Any]:
    row: dict[str, Any] = {"type": spec.type.value}
    if spec.restart_only:
        row["restart_only"] = True
        return row
    if spec.min is not None:
        row["min"] = spec.min
    if spec.max is not None:
        row["max"] = spec.max
    if spec.min_exclusive:
        row["min_exclusive"] = True
    if spec.choices:
        row["choices"] = list(spec.choices)
    return row


@pytest.mark.stack
def test_database_bounds_match_the_agents(stack_env: dict[str, str]) -> None:
    client = create_client(stack_env["API_URL"], stack_env["ANON_KEY"])
    in_database = client.rpc("liveparams_parameter_spec").execute().data
    assert in_database == {name: _as_sql_spec(spec) for name, spec in PARAMETERS.items()}


def test_configuration_doc_names_every_variable_and_field() -> None:
    from dataclasses import fields

    from liveparams.agent import AgentConfig, _config

    text = (paramdoc.DOC.parent / "configuration.md").read_text(encoding="utf-8")
    variables = ["JOB_ID", *_config._URL_VARS, *_config._KEY_VARS, *_config._API_KEY_VARS, *_config._NAME_VARS]
    missing = [name for name in variables if f"`{name}`" not in text]
    missing += [
        f.name for f in fields(AgentConfig) if f"`{f.name}`" not in text and f.name not in _config._NAME_VARS.values()
    ]
    assert not missing, f"docs/configuration.md does not mention: {missing}"


def test_docs_say_which_credential_liveparams_token_makes() -> None:
    """`liveparams token JOB` is `credential issue` (a trainer session, from the secret key); only with
    `--legacy-hs256` is it a job token from the JWT secret. Docs that said otherwise had people put two
    lines of output into LIVEPARAMS_TOKEN."""
    wrong = [
        f"{path.name}: {line.strip()}"
        for path in sorted(paramdoc.DOC.parent.glob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if "liveparams token" in line and "--legacy-hs256" not in line and "credential issue" not in line
    ]
    assert not wrong, wrong


def _logged_problems() -> list[str]:
    """The fixed text (up to the first placeholder) of every WARNING-or-worse log call in the library."""
    import ast

    levels = {"warning", "error", "exception", "critical"}

    def is_problem_logger(func: ast.expr) -> bool:
        if isinstance(func, ast.IfExp):
            return is_problem_logger(func.body) or is_problem_logger(func.orelse)
        return isinstance(func, ast.Attribute) and func.attr in levels and getattr(func.value, "id", "") == "logger"

    root = paramdoc.DOC.parent.parent
    found = []
    for package in ("agent", "trainer_hooks"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and is_problem_logger(node.func) and node.args:
                    first = node.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        found.append(first.value)
    return found


def _template(message: str) -> str:
    """A regex for a %-style log template: each placeholder stands for whatever the doc writes there (``<id>``)."""
    return ".+?".join(re.escape(part) for part in re.split(r"%[-+ #0-9.]*[sdfgrx]", message.strip()))


def test_troubleshooting_explains_every_warning() -> None:
    text = " ".join((paramdoc.DOC.parent / "troubleshooting.md").read_text(encoding="utf-8").split())
    messages = _logged_problems()
    assert len(messages) > 10
    missing = [message for message in messages if not re.search(_template(message), text)]
    assert not missing, f"docs/troubleshooting.md does not explain: {missing}"


def test_the_architecture_walk_names_what_exists() -> None:
    """docs/architecture.md follows one learning-rate request file by file: every file and name it gives must exist."""
    root = paramdoc.DOC.parent.parent
    text = (paramdoc.DOC.parent / "architecture.md").read_text(encoding="utf-8")
    walk = text.split("## One learning-rate request, file by file", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in walk.splitlines() if re.match(r"\| \d+a? \|", line)]
    assert len(rows) > 10
    wrong = [path for path in re.findall(r"`([\w/.-]+\.(?:py|sql))`", walk) if not (root / path).is_file()]
    for row in rows:
        path, names = row[1].strip("` "), row[2]
        source = (root / path).read_text(encoding="utf-8") if (root / path).is_file() else ""
        for name in re.findall(r"`([\w.]+)`", names):
            *owner, member = name.split(".")
            defined = rf"(def|class) {member}\b|self\.{member}\b[^=\n]*=|function public\.{member}\b"
            if not re.search(defined, source) or (owner and not re.search(rf"class {owner[0]}\b", source)):
                wrong.append(f"{path}: {name}")
    assert not wrong, f"docs/architecture.md names what does not exist: {wrong}"


def test_quickstart_and_installing_give_the_same_install_commands() -> None:
    """One set of install commands: the quickstart's block appears as is in installing.md, which alone says more."""
    docs = paramdoc.DOC.parent
    quickstart = (docs / "quickstart.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- quickstart: not run \(installs packages\) -->\n(```bash\n.*?```)", quickstart, re.DOTALL)
    assert block is not None, "the quickstart has no install block"
    assert block.group(1) in (docs / "installing.md").read_text(encoding="utf-8")
    assert "pip install" not in quickstart and "npm " not in quickstart
