"""Finding the files to read, choosing them by their entry-time bounds, and reading
their bytes and lines.

The pieces every reader shares (``iter_entries``, ``summarize``, the DuckDB engine,
``tail``): which files in a directory are ours (through the writer's one naming
rule), which of them a :class:`~analytics._read.filter.Filter` may need (by the entry-time
bounds in a ``.gz`` header, or scanned from the entry times), and their uncompressed
bytes, read on from the ``.gz`` when a ``.jsonl`` is compressed away mid-read, and
split into lines. Everything here is blocking: call it from a worker thread.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .._bounds import TimeBounds, read_bounds
from .._exceptions import MetricsDirNotFoundError, NotAMetricsDirError
from .._fileops import data_file_names, gunzip
from .._policy import FileName
from .filter import Filter

__all__ = [
    "RAW_CHUNK",
    "READ_CHUNK",
    "ReadStats",
    "chunks",
    "damaged_prefix",
    "data_files",
    "gunzip",
    "line_batches",
    "named_files",
    "resolve_metrics_dir",
    "scan_bounds",
    "select_files",
]

logger = logging.getLogger("analytics")

READ_CHUNK = 1024 * 1024
"""Bytes read per blocking call: large, but bounded."""

RAW_CHUNK = 256 * 1024
"""Compressed bytes read per blocking call."""

_parse_time = datetime.fromisoformat


@dataclass
class ReadStats:
    """What a read went through."""

    files: int = 0
    files_skipped: int = 0
    """Files not read because their entry-time bounds put them outside
    ``since``/``until``."""
    entries: int = 0
    """Entries yielded (after filters)."""
    bad_lines: int = 0
    """Lines skipped: torn, corrupt, or not an entry."""


def resolve_metrics_dir(base_path: str | os.PathLike[str]) -> Path:
    """``<base_path>/metrics`` if it exists, else ``base_path`` itself (so both the
    writer's base path and its ``metrics_dir`` work).

    Raises:
        MetricsDirNotFoundError: neither exists (a ``FileNotFoundError``).
        NotAMetricsDirError: ``base_path`` is a file (a ``NotADirectoryError``).
    """
    base = Path(base_path)
    if (base / "metrics").is_dir():
        return base / "metrics"
    if base.is_dir():
        return base
    if base.exists():
        raise NotAMetricsDirError(errno.ENOTDIR, "not a directory", str(base))
    raise MetricsDirNotFoundError(errno.ENOENT, "no such directory", str(base))


def data_files(metrics_dir: Path, prefix: str = "metrics") -> list[Path]:
    """The files to read in ``metrics_dir``, oldest first.

    A crash between a compression's last two steps can leave a source next to its
    complete ``.gz``; the ``.gz`` is complete by construction, so only it is read.
    """
    return [path for _, path in named_files(metrics_dir, prefix)]


def named_files(metrics_dir: Path, prefix: str) -> list[tuple[FileName, Path]]:
    """Our files in ``metrics_dir`` with their parsed names, oldest first; a source
    next to its complete ``.gz`` is left out (see :func:`data_files`)."""
    ours, strangers = data_file_names(metrics_dir, prefix)
    for name in strangers:
        logger.warning("%s: named like a data file but not a regular file; ignored", name)
    compressed = {info.stem for info in ours if info.compressed}
    return sorted(
        (info, metrics_dir / info.name)
        for info in ours
        if info.compressed or info.name not in compressed
    )


def chunks(path: Path) -> Iterator[bytes]:
    """The bytes of ``path``, uncompressed. A ``.jsonl`` that vanishes before or while
    it is read (the writer compressed it, then removed it) is read on from its
    ``.gz``, whose uncompressed bytes are the same, from where reading stopped."""
    if path.name.endswith(".gz"):
        yield from gunzip(path)
        return
    done = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                done += len(chunk)
                yield chunk
        return
    except FileNotFoundError:
        pass
    compressed = path.with_name(path.name + ".gz")
    logger.info("%s disappeared while reading; reading on from %s", path.name, compressed.name)
    yield from gunzip(compressed, skip=done)


def damaged_prefix(path: Path) -> bytes | None:
    """What a damaged or truncated ``.gz`` holds before the damage (a warning is
    logged); ``None`` when it is intact. Blocking."""
    parts: list[bytes] = []
    try:
        for chunk in gunzip(path):
            parts.append(chunk)
    except (EOFError, zlib.error) as exc:
        logger.warning("%s: stopped at a damaged gzip stream (%s)", path.name, exc)
        return b"".join(parts)
    return None


def line_batches(path: Path) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(number of the first line, lines)`` per chunk read; a last line without
    its newline is yielded too (it fails to parse if torn, and is counted)."""
    rest = b""
    number = 1
    try:
        for chunk in chunks(path):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield number, lines
            number += len(lines)
    except FileNotFoundError:
        logger.info("%s disappeared while reading (compressed or deleted)", path.name)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a truncated .gz
        logger.warning("%s: stopped at a damaged gzip stream (%s)", path.name, exc)
    if rest:
        yield number, [rest]


_ENTRY_TIME = re.compile(rb'"timestamp"\s*:\s*"([^"\\]*)"')


def scan_bounds(path: Path) -> TimeBounds | None:
    """The entry-time span of a file whose header does not record it, found by
    looking at its lines' ``timestamp`` values only (no full parse); ``None`` when a
    line's time cannot be found that way (the file is then read first of all)."""
    low: datetime | None = None
    high: datetime | None = None
    rest = b""
    try:
        for chunk in chunks(path):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            rest, data = data[cut:], data[:cut]
            lines = data.count(b"\n") - data.count(b"\n\n")
            found = _ENTRY_TIME.findall(data)
            if len(found) < lines and _hides_a_time(data):
                return None
            plain = [t for t in found if len(t) == 32 and t.endswith(b"+00:00")]
            odd = {t for t in found if len(t) != 32 or not t.endswith(b"+00:00")}
            # Times as this library writes them sort as text: parse two of them.
            for text in {min(plain, default=b""), max(plain, default=b"")} | odd:
                if not text:
                    continue
                try:
                    moment = _parse_time(text.decode()).astimezone(UTC)
                except (ValueError, UnicodeDecodeError):
                    continue  # not a valid entry time: the line will not be read either
                if moment.utcoffset() is None:
                    continue
                low = moment if low is None or moment < low else low
                high = moment if high is None or moment > high else high
    except (OSError, EOFError, zlib.error):
        return None
    if rest.strip():
        tail = _ENTRY_TIME.search(rest)
        if tail is None:
            if _hides_a_time(rest):
                return None
        else:
            try:
                moment = _parse_time(tail.group(1).decode()).astimezone(UTC)
                low = moment if low is None or moment < low else low
                high = moment if high is None or moment > high else high
            except (ValueError, UnicodeDecodeError):
                pass
    if low is None or high is None:
        return None
    return TimeBounds.of(low, high)


def _hides_a_time(data: bytes) -> bool:
    """Whether a line without a plain ``"timestamp":"..."`` may still be a valid entry
    (its key or time written with JSON escapes); without escapes, it cannot be."""
    return any(b"\\" in line and not _ENTRY_TIME.search(line) for line in data.split(b"\n"))


def select_files(
    directory: Path, keep: Filter, stats: ReadStats, *, scan: bool = False
) -> list[tuple[FileName, Path, TimeBounds | None]]:
    """Our files in ``directory`` (named with ``keep.prefix``) that may hold entries in
    ``[since, until)``, oldest first, with their entry-time bounds when known.

    A file name tells when the file was created, not which entry times it holds, so
    files are dropped only by the bounds in their gzip header, or, with ``scan``, by
    the bounds :func:`scan_bounds` finds for the others. A file whose bounds stay
    unknown is kept. Each file dropped counts in ``stats.files_skipped``.
    """
    chosen = []
    for info, path in named_files(directory, keep.prefix):
        bounds = read_bounds(path) if info.compressed else None
        if bounds is None and scan:  # unknown: learn them from the entry times themselves
            bounds = scan_bounds(path)
        if keep.windowed and not keep.may_hold(bounds):
            stats.files_skipped += 1
        else:
            chosen.append((info, path, bounds))
    return chosen
