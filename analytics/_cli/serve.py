"""``analytics serve``: the live dashboard of a directory, until a signal asks for a
clean stop."""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .arguments import CliError, add_dir, seconds

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
TOKEN_ENV = "ANALYTICS_SERVE_TOKEN"
NEEDS_EXTRA = (
    "the dashboard needs Starlette and uvicorn: pip install 'asyncio-jsonl-analytics[serve]'"
)


def port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is between 0 and 65535")
    return number


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve a live dashboard of a directory in the browser",
        description="Serve a live dashboard of a directory: the HTML report, refreshed"
        " every few seconds as entries are written, with controls for the time window,"
        " type, tool and session. It only reads the directory (which may not exist"
        " yet). Stop it with Ctrl-C or SIGTERM (exit status 0). Needs the serve extra:"
        " pip install 'asyncio-jsonl-analytics[serve]'.",
    )
    add_dir(serve)
    serve.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"the address to bind (default: {DEFAULT_HOST}, this machine only; any other"
        " address prints a warning)",
    )
    serve.add_argument(
        "--port", type=port, default=DEFAULT_PORT, help=f"the port (default: {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--token",
        default=None,
        help=f"require this token on every request (?token=... or Authorization: Bearer);"
        f" default: the environment variable {TOKEN_ENV}, else none",
    )
    serve.add_argument(
        "--refresh",
        type=seconds,
        default=3.0,
        help="how often the page refreshes (default: 3s)",
    )


def run(args: argparse.Namespace) -> int:
    # A server runs on: the cyclic collector stays on (main() turns it off for the
    # short-lived commands and turns it back on when this returns).
    gc.enable()
    try:
        from .._serve.app import create_app
        from .._serve.server import DashboardServer, check_bindable, is_local
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in {"starlette", "uvicorn"}:
            raise CliError(NEEDS_EXTRA) from None
        raise
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if not is_local(args.host):
        guard = (
            " (the token guards it, over plain HTTP)"
            if token
            else ", and with no token (--token) anyone who reaches it reads what DIR holds"
        )
        print(
            f"analytics serve: warning: binding {args.host} makes the dashboard reachable"
            f" from other machines{guard}",
            file=sys.stderr,
        )
    try:
        check_bindable(args.host, args.port)  # in use: one line now, before any reading
    except OSError as exc:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    app = create_app(args.dir, prefix=args.prefix, token=token, refresh_seconds=args.refresh)
    server = DashboardServer(app, args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"analytics serve: {Path(args.dir)} on http://{shown}:{args.port}/"
        + (" (token required)" if token else "")
        + " (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    with _StopOnSignals(server.stop):
        started = server.run()
    return 0 if started else 1


class _StopOnSignals:
    """SIGINT and SIGTERM ask the server to stop (exit status 0); the previous
    handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: Any) -> None:
        self.stop = stop
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self._request)

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _request(self, number: int, frame: object) -> None:
        self.stop()
