"""Serving the dashboard with uvicorn, stopped by the caller (its signal handlers),
so that SIGINT and SIGTERM end it cleanly instead of being raised again."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LOCAL_HOSTS", "DashboardServer", "is_local"]

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def is_local(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine (loopback only)."""
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The command line's handlers ask for the stop (should_exit): uvicorn's own
        # would raise the signal again after shutdown, ending the process by it.
        yield


class DashboardServer:
    """One uvicorn server for ``app`` on ``host:port``. :meth:`run` blocks until
    :meth:`stop` (from a signal handler, or another thread) asks it to end.

    Args:
        app: the ASGI app.
        host: the address to bind.
        port: the port to bind.
    """

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            server_header=False,
        )
        self._server = _Server(config)

    def run(self) -> None:
        """Serve until stopped. Raises ``SystemExit`` when the port cannot be bound
        (uvicorn's way; its log says why)."""
        self._server.run()

    def stop(self) -> None:
        """Ask the server to finish the requests in flight and return from :meth:`run`."""
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return self._server.started
