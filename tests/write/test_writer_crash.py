"""A writer killed with SIGKILL at random moments: what it leaves, and the repair."""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from analytics import JSONLWriter, MetricEntry

from ..helpers import read_all

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from analytics import JSONLWriter, MetricEntry, MetricType

    async def main(base, run):
        async with JSONLWriter(base, max_file_size=12_000, max_files=1_000_000,
                               buffer_size=25, flush_interval=0.005) as writer:
            sys.stdout.write("ready\\n")
            sys.stdout.flush()
            seq = 0
            while True:
                batch = [
                    MetricEntry(type=MetricType.TOOL_USE, session_id=run,
                                data={"seq": seq + k, "pad": "x" * (seq % 200)})
                    for k in range(7)
                ]
                seq += len(batch)
                await writer.write_batch(batch)
                await writer.flush()
                # Only now are these entries reported as flushed.
                sys.stdout.write(" ".join(e.id for e in batch) + "\\n")
                sys.stdout.flush()
                await asyncio.sleep(0)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def _run_and_kill(base: Path, run: str, rng: random.Random) -> list[str]:
    """Start a writer process, kill it at a random moment, return the ids it flushed."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(base), run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    out = b""
    try:
        # Wait until it is writing, then let it run a random while.
        deadline = time.monotonic() + 20
        while b"ready\n" not in out and time.monotonic() < deadline:
            if select.select([child.stdout], [], [], 0.1)[0]:
                out += os.read(child.stdout.fileno(), 65536)
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
        until = time.monotonic() + rng.uniform(0.02, 0.5)
        while time.monotonic() < until:
            if select.select([child.stdout], [], [], 0.01)[0]:
                out += os.read(child.stdout.fileno(), 65536)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    out += child.stdout.read()
    child.stdout.close()
    if child.stderr is not None:
        child.stderr.close()
    complete = out.split(b"\n")[:-1]  # a report line cut by the kill is not a report
    return [i for line in complete if line != b"ready" for i in line.decode().split()]


def _check_after_crash(metrics_dir: Path) -> Counter[str]:
    """What a crash may leave: every line whole except one torn tail of an active
    file; every .gz complete; a .gz.tmp only beside its source. Returns id counts."""
    names = {p.name for p in metrics_dir.iterdir()}
    torn = 0
    ids: Counter[str] = Counter()
    for name in sorted(names):
        path = metrics_dir / name
        if name.endswith(".gz.tmp"):
            source = name[: -len(".gz.tmp")]
            related = sorted(n for n in names if n.startswith(source))
            assert source in names, f"{name} without its source: {related}"
            continue
        if name.endswith(".jsonl.new"):
            continue  # a file killed between creation and naming: it holds no entry
        if name.endswith(".jsonl.gz"):
            lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)  # complete
        elif name.endswith(".jsonl"):
            lines = path.read_bytes().splitlines(keepends=True)
            if lines and not lines[-1].endswith(b"\n"):
                torn += 1
                lines.pop()
            if name + ".gz" in names:
                continue  # the complete .gz holds the same lines
        else:
            raise AssertionError(f"unexpected file {name}")
        for line in lines:
            ids[MetricEntry.from_json_line(line).id] += 1
    assert torn <= 1, f"{torn} files with a torn last line"
    return ids


def test_sigkill_at_random_moments_loses_nothing_flushed(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261123")))
    flushed: list[str] = []
    started = time.monotonic()
    runs = 0
    while runs < 14 and time.monotonic() - started < 25:
        flushed += _run_and_kill(tmp_path, f"run{runs}", rng)
        runs += 1
        on_disk = _check_after_crash(tmp_path / "metrics")
        missing = [i for i in flushed if on_disk[i] != 1]
        assert not missing, f"run {runs}: {len(missing)} flushed entries not present once"
        assert all(n == 1 for n in on_disk.values()), "an entry is on disk twice"
    assert runs >= 5
    assert len(flushed) > 1000
    gz = list((tmp_path / "metrics").glob("*.jsonl.gz"))
    assert gz, "the runs never got as far as compressing"

    async def repair() -> None:
        async with JSONLWriter(tmp_path, max_file_size=12_000, max_files=1_000_000):
            pass

    asyncio.run(repair())
    names = [p.name for p in (tmp_path / "metrics").iterdir()]
    assert not [n for n in names if n.endswith(".tmp")]
    assert not [n for n in names if n.endswith(".jsonl") and n + ".gz" in names]
    assert len([n for n in names if n.endswith(".jsonl")]) == 1  # only the active one
    found = Counter(e.id for e in read_all(tmp_path / "metrics"))  # strict: all lines parse
    assert all(found[i] == 1 for i in flushed)
    assert all(n == 1 for n in found.values())
