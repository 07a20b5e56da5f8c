"""The demo's web panel: served while the demo trains, so a person can watch and steer the run in a browser."""

from __future__ import annotations

import threading

from rich.console import Console

from liveparams.jobs import JobError
from liveparams.panel import DEFAULT_PORT, PanelConfig, PanelServer, check_built


def demo_panel(console: Console, env: dict[str, str], job_id: str, email: str, password: str) -> PanelServer | None:
    """Serve the panel for the demo's stack (the usual port, else a free one) and say how to sign in.

    A checkout without the panel's build still runs the demo: it says how to build the panel instead.
    """
    try:
        check_built()
    except JobError as exc:
        console.print(f"(no panel: {exc})")
        return None
    config = PanelConfig(env["API_URL"], env["ANON_KEY"])
    try:
        server = PanelServer(config, DEFAULT_PORT).start()
    except JobError:  # the port is taken (another panel, another demo)
        server = PanelServer(config, 0).start()
    console.print(f"watch and steer it in the panel: [bold]{server.url}#/job/{job_id}[/]", soft_wrap=True)
    console.print(f"  sign in as [bold]{email}[/] with the password [bold]{password}[/]", soft_wrap=True)
    return server


def keep_up(console: Console, panel: PanelServer | None) -> None:
    """Wait for Ctrl-C with the stack and the panel up (``--keep-up``)."""
    where = f" and the panel ({panel.url})" if panel else ""
    console.print(f"the stack{where} stay up; press Ctrl-C to stop them")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopping …")
