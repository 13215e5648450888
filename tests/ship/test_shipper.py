"""The shipper against real servers: every entry arrives, exactly once after dedup,
through rotation, compression, crashes of the shipper and of the server, retention
and poison lines."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from analytics import (
    JSONLWriter,
    MetricEntry,
    MetricsWriter,
    MetricType,
    Shipper,
    ShipperLockedError,
    read_entries,
    summarize,
    summarize_central,
)
from analytics._checkpoint import load_checkpoint, read_losses
from analytics.testing import foreign_line, write_data_file

from .central import Central

pytestmark = pytest.mark.slow

FAST: dict[str, Any] = {"poll_interval": 0.05, "min_insert_interval": 0.05, "max_retry_delay": 0.5}


async def write_mixed(base: Path, n: int, *, session: str = "s", **options: Any) -> list[str]:
    """``n`` entries of several types through a real writer; their ids."""
    ids: list[str] = []
    settings: dict[str, Any] = {"max_file_size": "256 KiB", "max_files": 10_000} | options
    async with JSONLWriter(base, **settings) as writer:
        metrics = MetricsWriter(writer)
        for i in range(n):
            kind = i % 4
            if kind == 0:
                entry = await metrics.track_tool_use(
                    session, f"tool{i % 7}", i % 5 != 0, duration_ms=float(i % 300)
                )
            elif kind == 1:
                entry = await metrics.track_token_usage(session, "m1", i % 100, i % 50)
            elif kind == 2:
                entry = await metrics.track_error(session, "Timeout", f"attempt {i} - ü")
            else:
                entry = await metrics.track_session_start(f"{session}-{i}", user_id="u")
            ids.append(entry.id)
    return ids


def shipped_ids(ids: list[str]) -> set[str]:
    assert len(ids) == len(set(ids)), "a duplicate survived dedup"
    return set(ids)


async def test_a_rotating_compressing_writer_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, central: Central
) -> None:
    """What a generic tailer gets wrong (the collector lost 2.9 % here): 256 KiB
    rotation with gzip while shipping."""
    written: list[str] = []
    async with Shipper(tmp_path, central.url, **FAST) as shipper:
        written = await write_mixed(tmp_path, 20_000, max_file_size="256 KiB")
        await wait_caught_up(shipper)
    assert len(list((tmp_path / "metrics").glob("*.jsonl.gz"))) > 5  # it did rotate
    assert shipped_ids(await central.ids()) == set(written)
    stats = shipper.stats()
    assert stats.entries_shipped == 20_000
    assert stats.rejected_lines == 0


async def wait_caught_up(shipper: Shipper, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        stats = shipper.stats()
        if stats.lag_bytes == 0 and stats.oldest_unshipped_age is None and stats.batches:
            checkpoint = load_checkpoint(shipper.checkpoint_file)
            assert checkpoint is not None
            active = [p for p in shipper.checkpoint_file.parent.glob("metrics_*.jsonl")]
            sizes = {p.name: p.stat().st_size for p in active if p.exists()}
            if all(
                checkpoint.files.get(n) and checkpoint.files[n].offset >= s
                for n, s in sizes.items()
            ):
                return
        assert time.monotonic() < deadline, f"not caught up: {stats}"
        await anyio.sleep(0.05)


def ship_command(directory: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "analytics", "ship", str(directory), "--to", url, *extra]


async def test_sigkill_of_the_shipper_at_random_points_converges_exactly(
    tmp_path: Path, central: Central
) -> None:
    written = await write_mixed(tmp_path, 30_000, max_file_size="128 KiB")
    rng = random.Random(14)
    for _ in range(8):
        process = subprocess.Popen(
            ship_command(tmp_path, central.url, "--batch-lines", "1500"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    done = subprocess.run(
        ship_command(tmp_path, central.url, "--once"), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert shipped_ids(await central.ids()) == set(written)


async def test_the_server_killed_mid_insert_and_restarted_converges(
    tmp_path: Path, crashable: Central
) -> None:
    written = await write_mixed(tmp_path, 30_000, max_file_size="128 KiB")
    async with Shipper(tmp_path, crashable.url, batch_lines=1000, **FAST) as shipper:
        while shipper.stats().batches < 3:
            await anyio.sleep(0.01)
        await anyio.to_thread.run_sync(crashable.crash)
        await anyio.sleep(1.0)
        assert shipper.stats().retries > 0 or shipper.stats().lag_bytes == 0
        await anyio.to_thread.run_sync(crashable.restart)
        await wait_caught_up(shipper)
    assert shipped_ids(await crashable.ids()) == set(written)


async def test_a_shipper_down_past_the_cap_counts_exactly_what_was_lost(
    tmp_path: Path, central: Central
) -> None:
    first = await write_mixed(tmp_path, 2_000, max_file_size="16 KiB")
    async with Shipper(tmp_path, central.url, **FAST) as shipper:
        await shipper.ship_once()
    # The shipper is down; the writer rotates far past max_files.
    later = await write_mixed(
        tmp_path, 6_000, max_file_size="16 KiB", max_files=5, max_unshipped_bytes="64 KiB"
    )
    directory = tmp_path / "metrics"
    kept = [p for p in directory.glob("metrics_*")]
    assert len(kept) > 5  # unshipped files kept beyond max_files, up to the cap
    async with Shipper(tmp_path, central.url, **FAST) as shipper:
        await shipper.ship_once()
    stats = shipper.stats()
    arrived = shipped_ids(await central.ids())
    assert arrived <= set(first + later)
    assert stats.lost_files > 0
    assert len(arrived) + stats.lost_lines == len(first) + len(later)
    losses = read_losses(next(directory.glob(".ship-*.lost.jsonl")))
    assert sum(loss.lines for loss in losses) == stats.lost_lines


async def test_a_poison_line_among_thousands_is_the_only_one_rejected(
    tmp_path: Path, central: Central
) -> None:
    directory = tmp_path / "metrics"
    good = [
        MetricEntry(type=MetricType.TOOL_USE, session_id="s", data={"tool_name": "t", "i": i})
        for i in range(5_000)
    ]
    poison = [foreign_line({"id": "x", "type": "no such type"})]
    if central.engine == "postgresql":  # jsonb refuses NUL in a string: the engine rejects it
        poison.append(
            MetricEntry(type=MetricType.TOOL_USE, session_id="s", data={"nul": "a\x00b"})
            .to_json_line()
            .rstrip(b"\n")
        )
    write_data_file(directory, good[:2_500], garbage=poison, tag="00000001")
    write_data_file(directory, good[2_500:], tag="00000002", compressed=True)
    async with Shipper(tmp_path, central.url, **FAST) as shipper:
        await shipper.ship_once()
    assert shipped_ids(await central.ids()) == {e.id for e in good}
    rejects = [json.loads(line) for line in shipper.rejects_file.read_text().splitlines()]
    assert [r["line"].encode() for r in rejects] == poison
    assert all(r["error"] for r in rejects)
    assert shipper.stats().rejected_lines == len(poison)


async def test_several_hosts_into_one_table_per_source_exact_and_fleet_report_equal(
    tmp_path: Path, central: Central
) -> None:
    hosts = [tmp_path / f"host{i}" for i in range(3)]
    counts = [1_200, 700, 300]
    for host, n in zip(hosts, counts, strict=True):
        await write_mixed(host, n, session=host.name, max_file_size="32 KiB")
    sources = []
    for host in hosts:
        async with Shipper(host, central.url, **FAST) as shipper:
            await shipper.ship_once()
        sources.append(shipper.source)
    assert len(set(sources)) == 3
    assert await central.by_source() == dict(zip(sources, counts, strict=True))
    # The fleet report (SQL on the server) equals the Python report over all files.
    together = tmp_path / "together"
    together.mkdir()
    for host in hosts:
        for path in (host / "metrics").glob("metrics_*"):
            shutil.copy(path, together / f"{path.name}")
    fleet = await summarize_central(central.url)
    local = summarize(together)
    assert fleet.model_dump() == local.model_dump()
    one = await summarize_central(central.url, source=sources[1])
    assert one.model_dump() == summarize(hosts[1]).model_dump()


async def test_one_shipper_per_sink_and_directory_others_side_by_side(
    tmp_path: Path, central: Central
) -> None:
    await write_mixed(tmp_path, 100)
    async with Shipper(tmp_path, central.url, **FAST):
        with pytest.raises(ShipperLockedError, match=r"pid \d+"):
            async with Shipper(tmp_path, central.url, **FAST):
                pass
        process = subprocess.run(
            ship_command(tmp_path, central.url, "--once"), capture_output=True, text=True
        )
        assert process.returncode == 1
        assert process.stderr.count("\n") == 1
        assert "another shipper" in process.stderr
        other = central.url.replace("table=entries", "table=other")
        async with Shipper(tmp_path, other, **FAST) as second:  # another sink: fine
            await second.ship_once()
        assert second.stats().entries_shipped == 100


async def test_sigterm_stops_cleanly_after_the_batch_in_flight(
    tmp_path: Path, central: Central
) -> None:
    written = await write_mixed(tmp_path, 3_000)
    process = subprocess.Popen(
        ship_command(tmp_path, central.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while len(await central.ids()) < len(written):
        assert time.monotonic() < deadline
        assert process.poll() is None
        await anyio.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    log = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(r.get("entries") for r in log)  # structured lines off a terminal
    # The checkpoint has it all: a new run ships nothing.
    again = subprocess.run(
        ship_command(tmp_path, central.url, "--once"), capture_output=True, text=True
    )
    assert again.returncode == 0
    assert "shipped 0 entries" in again.stderr


def test_the_report_on_the_server_prints_what_the_python_report_prints(
    tmp_path: Path, central: Central
) -> None:
    anyio.run(write_mixed, tmp_path, 2_000)
    run = subprocess.run(
        ship_command(tmp_path, central.url, "--once"), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    report = [sys.executable, "-m", "analytics", "report", str(tmp_path), "--format", "json"]
    local = subprocess.run(report, capture_output=True, text=True, check=True).stdout
    engine = "postgres" if central.engine == "postgresql" else "clickhouse"
    remote = subprocess.run(
        [*report, "--engine", engine, "--url", central.url], capture_output=True, text=True
    )
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local)
    assert read_entries(tmp_path)  # the directory is untouched by shipping and reporting


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://h/db?table=t", "unknown scheme 'mysql'"),
        ("postgresql://h:99999/db", "bad port"),
        ("clickhouse://h:8123/?table=t", "no database"),
        ("postgresql://h/db?table=1x", "bad table name '1x'"),
    ],
)
def test_bad_urls_are_one_line(tmp_path: Path, url: str, message: str) -> None:
    tmp_path.joinpath("metrics").mkdir()
    run = subprocess.run(ship_command(tmp_path, url, "--once"), capture_output=True, text=True)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_an_unreachable_server_at_start_is_one_line(tmp_path: Path) -> None:
    tmp_path.joinpath("metrics").mkdir()
    for url in ("postgresql://u@127.0.0.1:9/db?table=t", "clickhouse://127.0.0.1:9/db?table=t"):
        run = subprocess.run(
            ship_command(tmp_path, url, "--once"), capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1, run.stderr
        assert "127.0.0.1:9" in run.stderr


def test_print_ddl_connects_to_nothing(tmp_path: Path) -> None:
    for url, word in (
        ("postgresql://u@127.0.0.1:9/db?table=fleet", "CREATE TABLE IF NOT EXISTS"),
        ("clickhouse://127.0.0.1:9/db?table=fleet", "ReplacingMergeTree"),
    ):
        run = subprocess.run(
            ship_command(tmp_path, url, "--print-ddl"), capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        assert word in run.stdout
        assert "fleet" in run.stdout
