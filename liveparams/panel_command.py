"""``liveparams panel``: serve the web panel on this machine for the project in the environment."""

from __future__ import annotations

import argparse
import os

from liveparams.panel import DEFAULT_PORT, PanelConfig, PanelServer


def add_panel_command(subparsers: argparse._SubParsersAction) -> None:
    panel = subparsers.add_parser(
        "panel",
        help="serve the web panel (live chart, controls, request history) on localhost",
        description="Serve the web panel. The browser signs in with email and password and talks to the "
        "project directly with its public key; RLS decides what each person sees. Project: --url/--key, else "
        "$SUPABASE_URL (or $API_URL) and $SUPABASE_ANON_KEY (or $ANON_KEY); without them the page asks.",
    )
    panel.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    panel.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    panel.add_argument("--url", help="project URL (default: $SUPABASE_URL, else $API_URL, ...)")
    panel.add_argument("--key", help="the project's public (anon/publishable) key (default: $SUPABASE_ANON_KEY, ...)")
    panel.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    config = PanelConfig.from_env(dict(os.environ), args.url, args.key)
    server = PanelServer(config, args.port, args.host)
    project = f"project {config.url}" if config else "no project set: the page asks for one"
    print(f"liveparams panel: {server.url} ({project}); Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    finally:
        server.stop()
    return 0
