"""Helpers for testing code that uses ``analytics``: an in-memory sink, and data files
made to order (good ones, damaged ones, and ones another writer left).

Nothing here is needed in production; it is public so that your tests and ours build
the same things the same way::

    sink = MemorySink()
    metrics = MetricsWriter(sink)
    await metrics.track_tool_use("s1", "grep", success=True)
    assert sink.entries[0].data["tool_name"] == "grep"
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ._exceptions import WriterClosedError
from ._models import MetricEntry
from ._policy import format_name

__all__ = [
    "MemorySink",
    "data_file_name",
    "foreign_line",
    "truncate_gzip",
    "write_data_file",
    "write_foreign_file",
]


class MemorySink:
    """A :class:`~analytics.Sink` that keeps every entry in a list, in order.

    Attributes:
        entries: the entries written so far.
        flushes: how many times ``flush()`` was awaited.
        closed: ``close()`` was awaited; a ``write()`` after it raises
            ``WriterClosedError``, as a real sink's would.
    """

    def __init__(self) -> None:
        self.entries: list[MetricEntry] = []
        self.flushes = 0
        self.closed = False

    async def write(self, entry: MetricEntry) -> None:
        if self.closed:
            raise WriterClosedError("this MemorySink is closed")
        self.entries.append(entry)

    async def flush(self) -> None:
        self.flushes += 1

    async def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"<MemorySink entries={len(self.entries)} closed={self.closed}>"


def data_file_name(
    created: datetime | None = None,
    *,
    prefix: str = "metrics",
    pid: int = 4242,
    tag: str = "7e570000",
    compressed: bool = False,
) -> str:
    """A file name as the writer gives one: ``<prefix>_<UTC time>_p<pid>_<tag>.jsonl``
    (``.jsonl.gz`` if ``compressed``); ``created`` defaults to now."""
    moment = created if created is not None else datetime.now(UTC)
    return format_name(prefix, int(moment.timestamp() * 1e9), pid, tag, compressed)


def foreign_line(fields: dict[str, object]) -> bytes:
    """One line as another writer (or an older version) might write it: plain
    ``json.dumps`` of ``fields``, without this library's checks."""
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def write_data_file(
    directory: str | os.PathLike[str],
    entries: Iterable[MetricEntry],
    *,
    created: datetime | None = None,
    prefix: str = "metrics",
    pid: int = 4242,
    tag: str = "7e570000",
    compressed: bool = False,
    torn_tail: bytes = b"",
    garbage: Iterable[bytes] = (),
) -> Path:
    """Write ``entries`` into a data file as the writer names and fills one; return it.

    The file goes into ``directory`` (created if needed): pass a writer's
    ``metrics_dir``, ``base_path / "metrics"``. ``created`` (default: the first entry's
    time, else now) goes into the name. Damage on request:

    Args:
        torn_tail: bytes appended without a newline, as a crash mid-write leaves them.
        garbage: lines (newline added) written after the entries: corrupt JSON, lines
            that are not entries.
        compressed: gzip the file (``.jsonl.gz``); see :func:`truncate_gzip` to damage it.
    """
    items = list(entries)
    metrics_dir = Path(directory)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    if created is None:
        created = min((e.timestamp for e in items), default=None)
    name = data_file_name(created, prefix=prefix, pid=pid, tag=tag, compressed=compressed)
    data = b"".join(e.to_json_line() for e in items)
    data += b"".join(line.rstrip(b"\n") + b"\n" for line in garbage) + torn_tail
    path = metrics_dir / name
    path.write_bytes(gzip.compress(data) if compressed else data)
    return path


def truncate_gzip(path: str | os.PathLike[str], keep: float = 0.5) -> Path:
    """Cut a ``.jsonl.gz`` to the first ``keep`` share of its bytes, as a crash or a
    full disk during compression by another tool would leave it; return its path."""
    file = Path(path)
    data = file.read_bytes()
    file.write_bytes(data[: max(1, int(len(data) * keep))])
    return file


def write_foreign_file(
    directory: str | os.PathLike[str], name: str, content: bytes = b"not analytics\n"
) -> Path:
    """A file that is not ours in a metrics directory (``name`` may look like ours:
    ``metrics_backup.jsonl``, a ``.jsonl.gz.tmp``...); readers and retention must leave
    it alone. It goes into ``directory`` (created if needed). Return its path."""
    metrics_dir = Path(directory)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    path = metrics_dir / name
    path.write_bytes(content)
    return path
