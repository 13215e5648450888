"""Pure decisions, no I/O: file names, when to rotate, which files retention removes."""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

__all__ = [
    "FileName",
    "NameAllocator",
    "backoff_delay",
    "expired_groups",
    "next_boundary_ns",
    "parse_name",
    "retention_candidates",
    "rotation_bucket",
    "split_for_rotation",
]

_STAMP_FORMAT = "%Y%m%dT%H%M%S"


@dataclass(frozen=True, order=True)
class FileName:
    """A file this library wrote, parsed from its name.

    Ordering is chronological: by the creation time in the name, then pid, then tag.
    """

    created_ns: int
    """Creation time, in nanoseconds since the epoch (microsecond resolution)."""
    pid: int
    tag: str
    prefix: str
    compressed: bool

    @property
    def created(self) -> datetime:
        """The creation time from the name, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.created_ns / 1e9, tz=UTC)

    @property
    def name(self) -> str:
        """The file name (without directory)."""
        return format_name(self.prefix, self.created_ns, self.pid, self.tag, self.compressed)

    @property
    def stem(self) -> str:
        """The name of the uncompressed file this one is, or was compressed from."""
        return format_name(self.prefix, self.created_ns, self.pid, self.tag, False)


# Names are made and parsed over and over (retention lists the directory after every
# rotation and compression, in a worker thread that holds the GIL while it parses):
# both are cached (docs/benchmarks.md has what it saved).
_NAME_CACHE = 8192


@lru_cache(maxsize=_NAME_CACHE)
def format_name(prefix: str, created_ns: int, pid: int, tag: str, compressed: bool = False) -> str:
    """Return ``<prefix>_<YYYYmmddTHHMMSS.ffffff>Z_p<pid>_<tag>.jsonl[.gz]``.

    The time is fixed-width UTC, so names sort chronologically as plain strings.
    """
    seconds, rest_ns = divmod(created_ns, 1_000_000_000)
    stamp = time.strftime(_STAMP_FORMAT, time.gmtime(seconds))
    suffix = ".jsonl.gz" if compressed else ".jsonl"
    return f"{prefix}_{stamp}.{rest_ns // 1000:06d}Z_p{pid}_{tag}{suffix}"


@lru_cache(maxsize=16)
def _name_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"^{re.escape(prefix)}_(\d{{8}}T\d{{6}})\.(\d{{6}})Z_p(\d+)_([0-9a-f]{{8}})\.jsonl(\.gz)?$"
    )


@lru_cache(maxsize=_NAME_CACHE)
def parse_name(name: str, prefix: str) -> FileName | None:
    """Parse a file name; ``None`` if this library did not write it."""
    match = _name_pattern(prefix).match(name)
    if match is None:
        return None
    stamp, micros, pid, tag, gz = match.groups()
    try:  # the pattern guarantees the digits; datetime checks the ranges
        moment = datetime(
            int(stamp[0:4]),
            int(stamp[4:6]),
            int(stamp[6:8]),
            int(stamp[9:11]),
            int(stamp[11:13]),
            int(stamp[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    seconds = (moment - _EPOCH) // _SECOND
    created_ns = (seconds * 1_000_000 + int(micros)) * 1000
    return FileName(created_ns, int(pid), tag, prefix, gz is not None)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


class NameAllocator:
    """Hands out new file names that never repeat and always increase.

    Within a process, creation times are strictly increasing at microsecond
    resolution, even for two rotations in the same microsecond or a clock that steps
    back. The pid and a random per-writer tag keep processes (and writers) apart.
    """

    _lock = threading.Lock()
    _last_us = 0  # shared by every allocator in the process

    def __init__(self, prefix: str, pid: int, tag: str | None = None) -> None:
        self.prefix = prefix
        self.pid = pid
        self.tag = tag if tag is not None else secrets.token_hex(4)

    def next(self, now_ns: int | None = None) -> FileName:
        """Return the next name, later than every name handed out before in this process."""
        now_us = (time.time_ns() if now_ns is None else now_ns) // 1000
        with NameAllocator._lock:
            now_us = max(now_us, NameAllocator._last_us + 1)
            NameAllocator._last_us = now_us
        return FileName(now_us * 1000, self.pid, self.tag, self.prefix, False)


def split_for_rotation(size: int, lines: Sequence[bytes], start: int, max_file_size: int) -> int:
    """How many of ``lines[start:]`` fit in a file that already holds ``size`` bytes.

    A line never spans two files. An empty file always takes at least one line, so an
    entry larger than ``max_file_size`` is still written, alone in its file.
    """
    end = start
    total = size
    count = len(lines)
    while end < count:
        length = len(lines[end])
        if total > 0 and total + length > max_file_size:
            break
        total += length
        end += 1
    return end - start


def retention_candidates(
    files: Iterable[FileName], max_files: int, protected: FileName | None = None
) -> tuple[int, list[list[FileName]]]:
    """Which files retention may delete, and how many of them it should.

    A compressed file and a leftover uncompressed copy of it count as one. The
    protected file (the active one) is never a candidate, but still counts.

    Returns:
        ``(excess, groups)``: delete the first ``excess`` groups of ``groups`` that can
        be deleted. Groups come oldest first, by the time in their names, never by
        mtime; each group is the files of one stem (the uncompressed one first).
    """
    by_stem: dict[str, list[FileName]] = {}
    for f in files:
        by_stem.setdefault(f.stem, []).append(f)
    excess = len(by_stem) - max_files
    groups = sorted(
        (sorted(group, key=lambda f: f.compressed) for group in by_stem.values()),
        key=lambda group: (group[0].created_ns, group[0].pid, group[0].tag),  # C compares
    )
    if protected is not None:
        groups = [g for g in groups if g[0].stem != protected.stem]
    return max(excess, 0), groups


def expired_groups(
    groups: Iterable[list[FileName]], now_ns: int, max_age_ns: int
) -> list[list[FileName]]:
    """The groups whose creation time, read from the name, is older than ``max_age``."""
    cutoff = now_ns - max_age_ns
    return [group for group in groups if group[0].created_ns < cutoff]


def rotation_bucket(moment_ns: int, interval_ns: int) -> int:
    """Which interval, counted from 1970-01-01 UTC, ``moment_ns`` falls in.

    A file must be rotated once the current bucket is later than its creation's.
    """
    return moment_ns // interval_ns


def next_boundary_ns(moment_ns: int, interval_ns: int) -> int:
    """The first multiple of ``interval_ns`` (counted from 1970-01-01 UTC) after
    ``moment_ns``: the next time-rotation boundary."""
    return (rotation_bucket(moment_ns, interval_ns) + 1) * interval_ns


def backoff_delay(failures: int, first: float, cap: float, jitter: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``first`` doubling per
    failure, capped at ``cap``, then scaled by a random factor in ``[1 - jitter, 1]``
    (``jitter=1.0`` is "full jitter": anywhere from 0 to the capped delay), so that
    clients that failed together do not retry in lockstep. Never overflows: the
    exponent is capped before the power is computed."""
    exponent = min(max(failures - 1, 0), 64)
    base = min(first * 2.0**exponent, cap)
    return base * (1.0 - jitter + jitter * random.random())
