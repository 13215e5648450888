"""Serving the dashboard with uvicorn, stopped by the caller (its signal handlers),
so that SIGINT and SIGTERM end it cleanly instead of being raised again."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LOCAL_HOSTS", "DashboardServer", "check_bindable", "is_local"]

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def is_local(host: str) -> bool:
    """Whether binding ``host`` keeps the dashboard on this machine (loopback only)."""
    if host.lower() in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bindable(host: str, port: int) -> None:
    """Raise the ``OSError`` binding ``host:port`` would raise (in use, no such
    address), before the directory is read; the socket is closed at once.

    Raises:
        OSError: the address cannot be bound.
    """
    address = host.strip("[]")
    family = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        probe.bind((address, port))


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

    def run(self) -> bool:
        """Serve until stopped.

        Returns:
            ``False`` when the server could not start (uvicorn has logged why).
        """
        try:
            self._server.run()
        except SystemExit:  # uvicorn's way to give up at startup (a bind that failed)
            return False
        return True

    def stop(self) -> None:
        """Ask the server to finish the requests in flight and return from :meth:`run`."""
        self._server.should_exit = True

    @property
    def started(self) -> bool:
        return self._server.started
