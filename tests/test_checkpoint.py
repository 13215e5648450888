"""Checkpoints of shippers, and the writer's retention guard that reads them."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from analytics import JSONLWriter, MetricsWriter
from analytics._checkpoint import (
    Checkpoint,
    FileProgress,
    Loss,
    checkpoint_path,
    directory_id,
    load_checkpoint,
    load_checkpoints,
    losses_path,
    read_losses,
    save_checkpoint,
)


def test_a_checkpoint_reads_back_equal_and_is_replaced_whole(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, "pg")
    assert load_checkpoint(path) is None
    checkpoint = Checkpoint(
        sink="postgresql://u@h:5432/db?table=t",
        source="host/abc",
        files={"metrics_a.jsonl": FileProgress(120, True), "metrics_b.jsonl": FileProgress(7)},
        shipped=12,
        rejected=1,
        lost=[Loss("metrics_0.jsonl", 5, "2026-01-01T00:00:00+00:00")],
    )
    save_checkpoint(path, checkpoint)
    assert load_checkpoint(path) == checkpoint
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    assert load_checkpoints(tmp_path) == {"pg": checkpoint}


def test_a_damaged_checkpoint_is_an_error_naming_the_file_never_a_reset(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, "pg")
    path.write_text('{"version": 1, "sink": "x"')
    with pytest.raises(ValueError, match=str(path)):
        load_checkpoint(path)
    assert load_checkpoints(tmp_path) == {}  # the writer's guard skips it


def test_losses_skip_a_torn_last_line(tmp_path: Path) -> None:
    path = losses_path(tmp_path, "pg")
    path.write_text(json.dumps({"stem": "a", "lines": 3, "at": "t"}) + "\n" + '{"stem": "b", "li')
    assert read_losses(path) == [Loss("a", 3, "t")]


def test_the_directory_id_is_made_once(tmp_path: Path) -> None:
    first = directory_id(tmp_path)
    assert len(first) == 16
    assert directory_id(tmp_path) == first
    assert (tmp_path / ".analytics-id").read_text().strip() == first


async def write_rotating(base: Path, entries: int, **options: Any) -> None:
    settings: dict[str, Any] = {"max_file_size": 4096, "max_files": 3, "buffer_size": 10}
    async with JSONLWriter(base, **(settings | options)) as writer:
        metrics = MetricsWriter(writer)
        for i in range(entries):
            await metrics.track_tool_use("s", "grep", True, duration_ms=float(i))
            if i % 10 == 9:
                await writer.flush()


def lines_on_disk(directory: Path) -> int:
    total = 0
    for path in directory.glob("metrics_*.jsonl*"):
        data = path.read_bytes()
        total += (gzip.decompress(data) if path.name.endswith(".gz") else data).count(b"\n")
    return total


async def test_without_a_shipper_retention_is_as_before(tmp_path: Path) -> None:
    await write_rotating(tmp_path, 400)
    assert len(list((tmp_path / "metrics").glob("metrics_*"))) == 3


async def test_unshipped_files_are_kept_up_to_the_cap(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    save_checkpoint(checkpoint_path(directory, "pg"), Checkpoint(sink="pg://x", source="s"))
    await write_rotating(tmp_path, 400, max_unshipped_bytes="10 MiB")
    assert len(list(directory.glob("metrics_*"))) > 10  # nothing shipped: all kept
    assert lines_on_disk(directory) == 400
    assert not losses_path(directory, "pg").exists()


async def test_past_the_cap_the_oldest_go_and_every_lost_line_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    save_checkpoint(checkpoint_path(directory, "pg"), Checkpoint(sink="pg://x", source="s"))
    save_checkpoint(checkpoint_path(directory, "ch"), Checkpoint(sink="ch://y", source="s"))
    with caplog.at_level(logging.ERROR, logger="analytics"):
        await write_rotating(tmp_path, 600, max_unshipped_bytes=3000)
    for sink in ("pg", "ch"):
        losses = read_losses(losses_path(directory, sink))
        assert losses, sink
        assert len({loss.stem for loss in losses}) == len(losses)
        # Exactly what was written: what is still on disk, plus what was lost.
        assert lines_on_disk(directory) + sum(loss.lines for loss in losses) == 600
        for loss in losses:
            assert not (directory / loss.stem).exists()
    assert "before it was shipped to pg://x" in caplog.text


async def test_shipped_files_go_as_before_and_unshipped_ones_stay(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    await write_rotating(tmp_path, 200, max_files=100)
    stems = sorted(p.name.removesuffix(".gz") for p in directory.glob("metrics_*.jsonl.gz"))
    assert len(stems) > 6
    shipped = {stem: FileProgress(10**9, True) for stem in stems[:4]}
    save_checkpoint(
        checkpoint_path(directory, "pg"), Checkpoint(sink="pg://x", source="s", files=shipped)
    )
    await write_rotating(tmp_path, 60)  # max_files=3 now: it rotates, retention runs
    left = {p.name.removesuffix(".gz") for p in directory.glob("metrics_*")}
    assert not left & set(stems[:4])  # shipped: deleted
    assert set(stems[4:]) <= left  # not shipped: kept
