"""Parameter names for people at the terminal: the list in ``set --help`` and "did you mean" for a typo.

Both come from the one parameter table (``liveparams.contract.PARAMETERS``), so a parameter
added there shows up here with no other change.
"""

from __future__ import annotations

import argparse
import difflib
import textwrap

from liveparams.contract import PARAMETERS

__all__ = ["LinesHelpFormatter", "parameters_help", "unknown_parameter_hint"]


class LinesHelpFormatter(argparse.HelpFormatter):
    """Wraps each line of a description or epilog on its own, so the parameter list keeps one line per name.

    argparse's default joins every line into one paragraph; its raw formatter does not wrap at all.
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            lead = indent + " " * (len(line) - len(line.lstrip()))
            filled = textwrap.fill(line.strip(), width, initial_indent=lead, subsequent_indent=lead)
            lines.append(filled if line.strip() else "")
        return "\n".join(lines)


def parameters_help(width: int = 74) -> str:
    """The ``set --help`` epilog: each live parameter with its one-line meaning, then the restart-only ones."""
    live = [spec for spec in PARAMETERS.values() if not spec.restart_only]
    name_width = max(len(spec.name) for spec in live)
    lines = ["parameters (docs/parameters.md has bounds and how each is applied):"]
    for spec in live:
        indent = " " * (name_width + 4)
        text = f"  {spec.name:<{name_width}}  {spec.help}"
        lines.extend(textwrap.wrap(text, width, subsequent_indent=indent) or [text])
    if restart := ", ".join(spec.name for spec in PARAMETERS.values() if spec.restart_only):
        lines.extend(textwrap.wrap(f"need a restart (refused live): {restart}", width))
    return "\n".join(lines)


def unknown_parameter_hint(name: str) -> str | None:
    """For a name no parameter has, the sentence that says so and suggests the closest; None for a known name."""
    if name in PARAMETERS:
        return None
    close = difflib.get_close_matches(name.lower(), list(PARAMETERS), n=1, cutoff=0.6)
    guess = f"; did you mean {close[0]}?" if close else ""
    return f'unknown parameter "{name}"{guess} (`liveparams set --help` lists them)'
