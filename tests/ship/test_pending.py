"""Reading what is not shipped yet: whole lines past an offset, on from the ``.gz``."""

from __future__ import annotations

import gzip
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import MetricEntry, MetricType
from analytics._checkpoint import FileProgress
from analytics._ship.pending import PendingReader, Snapshot
from analytics.testing import truncate_gzip, write_data_file

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entries(n: int, start: int = 0) -> list[MetricEntry]:
    return [
        MetricEntry(
            type=MetricType.TOOL_USE,
            timestamp=T0 + timedelta(seconds=start + i),
            session_id=f"s{(start + i) % 3}",
            data={"tool_name": "grep", "success": True, "n": start + i, "pad": "x" * (i % 17)},
        )
        for i in range(n)
    ]


def drain(
    reader: PendingReader,
    progress: dict[str, FileProgress],
    lines: int = 10_000,
    size: int = 1 << 20,
) -> list[bytes]:
    """Read until nothing is left, advancing ``progress`` as the shipper does."""
    got: list[bytes] = []
    for _ in range(10_000):
        snapshot = reader.read(progress, lines, size)
        advance(progress, snapshot)
        got.extend(line for s in snapshot.segments for line in s.lines)
        if not snapshot.segments:
            return got
    raise AssertionError("never caught up")


def advance(progress: dict[str, FileProgress], snapshot: Snapshot) -> None:
    for segment in snapshot.segments:
        assert segment.start == progress.get(segment.stem, FileProgress()).offset
        progress[segment.stem] = FileProgress(segment.end, segment.complete)


def lines_of(items: list[MetricEntry]) -> list[bytes]:
    return [e.to_json_line().rstrip(b"\n") for e in items]


def test_every_line_of_plain_and_compressed_files_oldest_first(tmp_path: Path) -> None:
    old, new = entries(50), entries(30, start=100)
    write_data_file(tmp_path, old, compressed=True, tag="00000001")
    write_data_file(tmp_path, new, tag="00000002")
    progress: dict[str, FileProgress] = {}
    assert drain(PendingReader(tmp_path, "metrics"), progress, lines=7) == lines_of(old + new)
    completes = {stem: p.complete for stem, p in progress.items()}
    # The .gz is complete; a .jsonl never is (a restarted writer may continue it).
    assert sorted(completes.values()) == [False, True]


def test_a_file_compressed_between_reads_is_read_on_from_its_gz(tmp_path: Path) -> None:
    items = entries(40)
    path = write_data_file(tmp_path, items)
    reader, progress = PendingReader(tmp_path, "metrics"), {}  # type: ignore[var-annotated]
    first = reader.read(progress, 15, 1 << 20)
    advance(progress, first)
    got = [line for s in first.segments for line in s.lines]
    assert len(got) == 15
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    got += drain(reader, progress, lines=4)
    assert got == lines_of(items)
    assert next(iter(progress.values())).complete


def test_a_torn_tail_waits_and_is_never_shipped_from_a_complete_file(tmp_path: Path) -> None:
    items = entries(5)
    path = write_data_file(tmp_path, items, torn_tail=b'{"id": "half')
    reader, progress = PendingReader(tmp_path, "metrics"), {}  # type: ignore[var-annotated]
    assert drain(reader, progress) == lines_of(items)
    # The writer finishes the line: it is shipped then.
    with path.open("ab") as f:
        f.write(b'-done"}\n')
    assert drain(reader, progress) == [b'{"id": "half-done"}']
    # A compressed file whose last line is torn: complete, the tail never shipped.
    later = entries(3, 10)
    gz = write_data_file(tmp_path, later, compressed=True, tag="0000000f", torn_tail=b"{")
    assert drain(reader, progress) == lines_of(later)
    stem = gz.name.removesuffix(".gz")
    assert progress[stem].complete
    assert progress[stem].offset == len(gzip.decompress(gz.read_bytes())) - 1


def test_a_damaged_gz_ships_what_precedes_the_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = entries(2000)
    gz = truncate_gzip(write_data_file(tmp_path, items, compressed=True), keep=0.5)
    progress: dict[str, FileProgress] = {}
    with caplog.at_level(logging.ERROR, logger="analytics"):
        got = drain(PendingReader(tmp_path, "metrics"), progress, lines=100)
    assert 0 < len(got) < len(items)
    assert got == lines_of(items)[: len(got)]
    assert progress[gz.name.removesuffix(".gz")].complete
    assert "damaged" in caplog.text


def test_lag_counts_what_is_left(tmp_path: Path) -> None:
    path = write_data_file(tmp_path, entries(10))
    write_data_file(tmp_path, entries(10, 50), compressed=True, tag="00000009")
    size = path.stat().st_size
    snapshot = PendingReader(tmp_path, "metrics").read({}, 5, 1 << 20)
    assert snapshot.full
    shipped = sum(s.end - s.start for s in snapshot.segments)
    gz_size = len(b"".join(e.to_json_line() for e in entries(10, 50)))
    assert snapshot.lag_bytes == size + gz_size - shipped
    assert snapshot.lag_files == 2


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=5),
    compress_after=st.lists(st.booleans(), min_size=5, max_size=5),
    batch_lines=st.integers(1, 50),
    batch_bytes=st.integers(1, 5000),
)
def test_every_line_exactly_once_whatever_the_batches_and_compression(
    tmp_path_factory: pytest.TempPathFactory,
    sizes: list[int],
    compress_after: list[bool],
    batch_lines: int,
    batch_bytes: int,
) -> None:
    directory = tmp_path_factory.mktemp("pending")
    written: list[bytes] = []
    paths = []
    for i, n in enumerate(sizes):
        items = entries(n, start=1000 * i)
        paths.append(write_data_file(directory, items, tag=f"{i:08x}", created=T0 + timedelta(i)))
        written += lines_of(items)
    reader, progress = PendingReader(directory, "metrics"), {}  # type: ignore[var-annotated]
    got: list[bytes] = []
    for step in range(10_000):
        snapshot = reader.read(progress, batch_lines, batch_bytes)
        advance(progress, snapshot)
        got += [line for s in snapshot.segments for line in s.lines]
        if step < len(paths) and compress_after[step]:  # the writer compresses meanwhile
            path = paths[step]
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
        if not snapshot.segments and step >= len(paths):
            break
    assert got == written
