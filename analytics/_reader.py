"""Reading lines back from ``.jsonl`` and ``.jsonl.gz`` files (blocking)."""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from ._models import MetricEntry
from ._policy import parse_name

__all__ = ["FileScan", "data_files", "scan_directory", "scan_file"]

logger = logging.getLogger("analytics")

_READ_CHUNK = 1024 * 1024


@dataclass
class FileScan:
    """Entries read from files, with the lines that could not be read."""

    entries: list[MetricEntry] = field(default_factory=list)
    bad_lines: int = 0
    files: int = 0


def _chunks(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            yield chunk


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)``; a last line without its newline is yielded too."""
    rest = b""
    number = 0
    try:
        for chunk in _chunks(path):
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            for part in parts:
                number += 1
                yield number, part
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # a truncated .gz
        logger.warning("%s: stopped reading at a damaged gzip stream (%s)", path.name, exc)
    if rest:
        yield number + 1, rest


def scan_file(path: Path, result: FileScan | None = None) -> FileScan:
    """Read every valid entry of one file; bad lines are counted, never raised."""
    result = result if result is not None else FileScan()
    result.files += 1
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            result.entries.append(MetricEntry.from_json_line(line))
        except ValidationError:
            result.bad_lines += 1
            logger.warning("%s:%d: skipped a line that is not a valid entry", path.name, number)
    return result


def scan_directory(metrics_dir: Path, prefix: str = "metrics") -> FileScan:
    """Read every file this library wrote in ``metrics_dir``, oldest first."""
    result = FileScan()
    for path in data_files(metrics_dir, prefix):
        scan_file(path, result)
    return result


def data_files(metrics_dir: Path, prefix: str = "metrics") -> list[Path]:
    """The files to read in ``metrics_dir``, oldest first.

    A crash between a compression's last two steps can leave a source next to its
    complete ``.gz``; the ``.gz`` is complete by construction, so only it is read.
    """
    found = [(info, p) for p in metrics_dir.iterdir() if (info := parse_name(p.name, prefix))]
    compressed = {info.stem for info, _ in found if info.compressed}
    return [path for info, path in sorted(found) if info.compressed or info.name not in compressed]
