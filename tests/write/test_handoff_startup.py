"""Nothing is imported while a writer runs: anyio's asyncio backend, which anyio
imports lazily at the first thread hop (15-25 ms on the event loop, inside
``initialize()``), is imported with the package instead (``handoff.ASYNC_BACKEND``).

Checked through imports seen by an audit hook, not through time, so a noisy machine
cannot make it flaky: an import on the loop runs module code, holding up the loop
for as long as that takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from analytics._write import handoff

# A whole life of a writer in a fresh process: open, every kind of entry, rotation,
# gzip, retention, flush, health, stats, close. Prints the modules imported meanwhile.
CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    import analytics
    from analytics import JSONLWriter, MetricsWriter

    imported = []

    def hook(event, args):
        if event == "import":
            imported.append([args[0], threading.current_thread().name])

    async def main(directory):
        sys.addaudithook(hook)
        async with JSONLWriter(
            directory, max_file_size=4000, max_files=3, max_age=3600, flush_interval=0.01,
            **OPTIONS
        ) as writer:
            metrics = MetricsWriter(writer)
            for i in range(60):
                await metrics.track_session_start("s", user_id="u", model="m")
                await metrics.track_tool_use("s", "grep", True, 1.5, argument="x" * 50)
                await metrics.track_agent_execution("s", "agent", True, 2.0, task="t")
                await metrics.track_checkpoint_created("s", "c1", description="d")
                await metrics.track_hook_triggered("s", "pre", event="e", success=True)
                await metrics.track_command_executed("s", "ls", exit_code=0, success=True)
                await metrics.track_error("s", "ValueError", "boom")
                await metrics.track_token_usage("s", "m", 10, 20, cost_usd=0.01)
                await metrics.track_performance("s", "op", True, 3.0)
                await metrics.track_session_end("s", duration_seconds=1.0)
                async with metrics.time_tool("s", "grep"):
                    pass
                if i % 20 == 0:
                    await asyncio.sleep(0.05)
            await writer.flush()
            await writer.health()
            stats = writer.stats()
        print(json.dumps({"imported": imported, "rotations": stats.rotations,
                          "compressions": stats.compressions,
                          "deleted": stats.files_deleted}))

    OPTIONS = json.loads(sys.argv[2])
    asyncio.run(main(sys.argv[1]))
    """
)


def run_child(
    directory: Path, preamble: str = "", options: dict[str, Any] | None = None
) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", preamble + CHILD, str(directory), json.dumps(options or {})],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_whole_writer_life_imports_nothing(tmp_path: Path) -> None:
    result = run_child(tmp_path)
    # The run did rotate, compress and delete: every path was taken.
    assert result["rotations"]
    assert result["compressions"]
    assert result["deleted"]
    assert result["imported"] == []


def test_a_writer_life_with_isal_imports_nothing_after_its_configuration(
    tmp_path: Path,
) -> None:
    """``compressor="isal"`` imports isal when the option is validated (the
    application's configuration, before the writer's life), never at a compression."""
    configure = "from analytics import WriterConfig\nWriterConfig(compressor='isal')\n"
    result = run_child(tmp_path, preamble=configure, options={"compressor": "isal"})
    assert result["compressions"]
    assert result["imported"] == []


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    """The check can fail: a module the package does not import, imported lazily
    at the first write, is seen (with the thread that imported it)."""
    lazy = (
        "import analytics._write.writer as w\n"
        "_orig = w.JSONLWriter.write\n"
        "async def write(self, entry):\n"
        "    import colorsys\n"
        "    await _orig(self, entry)\n"
        "w.JSONLWriter.write = write\n"
    )
    result = run_child(tmp_path, preamble=lazy)
    assert ["colorsys", "MainThread"] in result["imported"]


def test_the_backend_is_imported_with_the_package() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, analytics; print({handoff.ASYNC_BACKEND!r} in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "True"
