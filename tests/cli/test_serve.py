"""``analytics serve``: a real process on a free port that stops cleanly on SIGTERM
and SIGINT, the warning off localhost, the token from the environment, and one line
when the extra is missing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from analytics._cli import main
from analytics._cli.serve import NEEDS_EXTRA

from ..helpers import T0, at, run_cli, write_file


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Served:
    """``python -m analytics serve`` started by the test, stopped by its own pid."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "analytics", "serve", *args, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    def wait_ready(self, headers: dict[str, str] | None = None) -> None:
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.process.communicate()
            try:
                if httpx.get(self.url + "/healthz", headers=headers, timeout=2).status_code in (
                    200,
                    401,
                ):
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for one in started:
        if one.process.poll() is None:
            one.process.kill()
            one.process.communicate()


@pytest.mark.slow
class TestRealProcess:
    @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
    def test_serves_then_stops_cleanly_on_a_signal(
        self, tmp_path: Path, served: list[Served], signum: int
    ) -> None:
        write_file(tmp_path / "metrics", T0, 1, [at(0), at(1), at(2)])
        server = Served(str(tmp_path))
        served.append(server)
        server.wait_ready()
        assert httpx.get(server.url + "/api/summary", timeout=10).json()["entries"] == 3
        page = httpx.get(server.url + "/", timeout=10)
        assert page.status_code == 200
        assert 'id="analytics-report"' in page.text
        code, err = server.stop(signum)
        assert code == 0, err
        assert f"http://127.0.0.1:{server.port}/" in err
        assert "warning" not in err
        assert "Traceback" not in err

    def test_the_token_comes_from_the_environment(
        self, tmp_path: Path, served: list[Served]
    ) -> None:
        server = Served(str(tmp_path / "none-yet"), env={"ANALYTICS_SERVE_TOKEN": "t0ken"})
        served.append(server)
        server.wait_ready()
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 401
        ok = httpx.get(server.url + "/", params={"token": "t0ken"}, timeout=10)
        assert ok.status_code == 200
        assert "No data directory yet" in ok.text
        code, err = server.stop()
        assert code == 0, err
        assert "token required" in err

    def test_binding_beyond_localhost_prints_a_warning(
        self, tmp_path: Path, served: list[Served]
    ) -> None:
        server = Served(str(tmp_path), "--host", "0.0.0.0")
        served.append(server)
        server.wait_ready()
        code, err = server.stop()
        assert code == 0, err
        (warning,) = [line for line in err.splitlines() if "warning" in line]
        assert "0.0.0.0" in warning
        assert "no token" in warning

    def test_a_port_in_use_is_one_line_before_any_reading(
        self, tmp_path: Path, served: list[Served]
    ) -> None:
        first = Served(str(tmp_path))
        served.append(first)
        first.wait_ready()
        write_file(tmp_path, T0, 1, [at(0)], tail=b"garbage\n")  # would be warned about
        second = run_cli("serve", str(tmp_path), "--port", str(first.port))
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"analytics: error: cannot listen on 127.0.0.1:{first.port}: Address already in use"
        ]
        assert first.stop()[0] == 0


class TestArguments:
    def test_help_is_plain_text(self) -> None:
        result = run_cli("serve", "--help")
        assert result.returncode == 0
        assert "--host" in result.stdout
        assert "--token" in result.stdout
        assert "127.0.0.1" in result.stdout
        assert "8765" in result.stdout
        assert "\x1b[" not in result.stdout

    def test_a_bad_port_is_one_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "somewhere", "--port", "70000"])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert "between 0 and 65535" in err

    @pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
    def test_a_missing_extra_is_one_line_naming_it(self, tmp_path: Path, missing: str) -> None:
        """In a fresh interpreter where ``missing`` cannot be imported."""
        code = (
            "import sys\n"
            f"sys.modules[{missing!r}] = None  # as if not installed\n"
            "from analytics._cli import main\n"
            f"sys.exit(main(['serve', {str(tmp_path)!r}, '--port', '{free_port()}']))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 1
        assert result.stderr.strip() == f"analytics: error: {NEEDS_EXTRA}"
        assert "pip install 'asyncio-jsonl-analytics[serve]'" in result.stderr
