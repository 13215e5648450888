"""The uvicorn server: which addresses count as local, and a real server on a free
port, stopped by its handle, that finishes cleanly."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from analytics._serve.app import create_app
from analytics._serve.server import DashboardServer, is_local

from ..helpers import T0, at, write_file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.org", False),
    ],
)
def test_only_loopback_addresses_are_local(host: str, local: bool) -> None:
    assert is_local(host) is local


def test_a_real_server_serves_until_stopped(tmp_path: Path) -> None:
    """uvicorn on 127.0.0.1 and a free port, in a thread: it answers, and ``stop``
    ends ``run`` (no signal raised again, no thread left behind)."""
    write_file(tmp_path, T0, 1, [at(0), at(1)])
    port = free_port()
    server = DashboardServer(create_app(tmp_path), "127.0.0.1", port)
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        response = httpx.get(f"http://127.0.0.1:{port}/api/summary", timeout=10)
        assert response.json()["entries"] == 2
    finally:
        server.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()
