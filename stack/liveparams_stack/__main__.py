"""``python -m liveparams_stack serve``: the front process ``LocalStack`` starts (not meant to be run by hand)."""

from __future__ import annotations

import argparse
from pathlib import Path

from liveparams_stack.server import ServerConfig, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m liveparams_stack")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the HTTP/WebSocket front of the local stack")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--dsn", required=True, help="superuser DSN of the stack's database")
    serve_parser.add_argument("--jwt-secret", required=True)
    serve_parser.add_argument("--enable-faults", action="store_true")
    serve_parser.add_argument("--project-dir", type=Path, help="the project whose supabase/config.toml configures Auth")
    serve_parser.add_argument(
        "--stop-with-parent", type=Path, metavar="STATE_DIR", help="release this stack when the parent process dies"
    )
    serve_parser.add_argument("--realtime-poll-ms", type=int, help="Realtime's WAL poll interval (default: fast)")
    args = parser.parse_args(argv)
    serve(
        ServerConfig(
            args.port,
            args.dsn,
            args.jwt_secret,
            args.enable_faults,
            stop_with_parent=args.stop_with_parent,
            project_dir=args.project_dir,
            realtime_poll_ms=args.realtime_poll_ms,
        )
    )


if __name__ == "__main__":
    main()
