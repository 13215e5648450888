"""The time span of a compressed file's entries, kept in its gzip header.

Entries may carry their own ``timestamp`` (back-dated imports, a clock that stepped,
late writes), so a file's name tells when the file was *created*, not which entry
times it holds. Readers prune whole files by time and merge files in order; to do
that correctly without reading a file, each ``.gz`` the writer makes records the
smallest and largest entry timestamp it holds, as a gzip "extra field" subfield
(RFC 1952, section 2.3.1.1). gzip tools ignore the subfield; ours find it in the
first few dozen bytes of the file.

A file whose bounds are unknown (an active ``.jsonl``, a ``.gz`` from an older
version, a leftover compressed by another process) is simply read.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "BOUNDS_SUBFIELD",
    "EntrySpan",
    "TimeBounds",
    "gzip_header",
    "gzip_trailer",
    "read_bounds",
]

BOUNDS_SUBFIELD = b"AT"  # SI1, SI2: "analytics time"
_PAYLOAD = struct.Struct("<qq")  # first and last entry time, microseconds since the epoch
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FEXTRA = 0x04
_HEADER_READ = 64


@dataclass(frozen=True)
class TimeBounds:
    """The earliest and latest entry timestamp in a file, in epoch microseconds."""

    first_us: int
    last_us: int

    @classmethod
    def of(cls, first: datetime, last: datetime) -> TimeBounds:
        return cls(epoch_us(first), epoch_us(last))

    def widen(self, other: TimeBounds | None) -> TimeBounds:
        if other is None:
            return self
        return TimeBounds(min(self.first_us, other.first_us), max(self.last_us, other.last_us))

    def overlaps(self, since: datetime | None, until: datetime | None) -> bool:
        """Whether an entry in ``[since, until)`` may be in the file."""
        if since is not None and self.last_us < epoch_us(since):
            return False
        return not (until is not None and self.first_us >= epoch_us(until))

    @property
    def first(self) -> datetime:
        return from_epoch_us(self.first_us)

    @property
    def last(self) -> datetime:
        return from_epoch_us(self.last_us)


def epoch_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    from datetime import timedelta

    return _EPOCH + timedelta(microseconds=value)


# The entry time of a line as MetricEntry.to_json_line writes it: "id" is the first key
# and "timestamp" the second, the time in UTC as "YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00".
# A string inside "id" cannot end it early (its quotes are escaped), and a raw newline
# occurs only between lines. In this one form, byte order is time order ("+" sorts
# before the digits, so a time without a fraction sorts before one with).
_ID_AND_TIME = rb'\{"id":"[^"\\]*(?:\\.[^"\\]*)*","timestamp":"'
_TIME = rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00)\""
_FIRST_LINE_TIME = re.compile(_ID_AND_TIME + _TIME)
_LATER_LINE_TIMES = re.compile(rb"\n" + _ID_AND_TIME + _TIME)


class EntrySpan:
    """The earliest and latest entry time of the lines written to one file, read from
    the lines as they are written (one regular-expression pass per batch, in C).

    Unknown (``None`` bounds) as soon as one line is not in the form the writer
    serializes, or when the file held lines this span did not see (a file continued
    from an earlier process): a file without bounds is simply read.
    """

    def __init__(self, *, complete: bool = True) -> None:
        self.known = complete
        self._first: bytes | None = None
        self._last: bytes | None = None

    def add(self, data: bytes, lines: int) -> None:
        """Take in ``data``: ``lines`` whole lines, each ending in a newline."""
        if not self.known or not lines:
            return
        head = _FIRST_LINE_TIME.match(data)
        times = _LATER_LINE_TIMES.findall(data)
        if head is None or len(times) != lines - 1:
            self.known = False
            return
        times.append(head.group(1))
        first, last = min(times), max(times)
        if self._first is None or first < self._first:
            self._first = first
        if self._last is None or last > self._last:
            self._last = last

    def bounds(self) -> TimeBounds | None:
        """The span of every line taken in; ``None`` if unknown or empty."""
        if not self.known or self._first is None or self._last is None:
            return None
        return TimeBounds(
            epoch_us(datetime.fromisoformat(self._first.decode())),
            epoch_us(datetime.fromisoformat(self._last.decode())),
        )


def gzip_header(bounds: TimeBounds | None, *, level: int) -> bytes:
    """A gzip member header, with the bounds subfield when they are known.

    The data that follows must be raw deflate (``wbits=-15``), then
    :func:`gzip_trailer`.
    """
    xfl = 2 if level == 9 else (4 if level == 1 else 0)
    if bounds is None:
        return struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, 0, 0, xfl, 255)
    payload = _PAYLOAD.pack(bounds.first_us, bounds.last_us)
    subfield = BOUNDS_SUBFIELD + struct.pack("<H", len(payload)) + payload
    return (
        struct.pack("<BBBBIBB", 0x1F, 0x8B, 8, _FEXTRA, 0, xfl, 255)
        + struct.pack("<H", len(subfield))
        + subfield
    )


def gzip_trailer(crc: int, size: int) -> bytes:
    return struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


def crc32(data: bytes | memoryview, value: int = 0) -> int:
    return zlib.crc32(data, value)


def parse_bounds(head: bytes) -> TimeBounds | None:
    """The bounds in the first bytes of a gzip file, or None if it has none."""
    if len(head) < 12 or head[:3] != b"\x1f\x8b\x08" or not head[3] & _FEXTRA:
        return None
    (xlen,) = struct.unpack_from("<H", head, 10)
    extra = head[12 : 12 + xlen]
    offset = 0
    while offset + 4 <= len(extra):
        ident = extra[offset : offset + 2]
        (length,) = struct.unpack_from("<H", extra, offset + 2)
        body = extra[offset + 4 : offset + 4 + length]
        if ident == BOUNDS_SUBFIELD and length == _PAYLOAD.size and len(body) == length:
            first, last = _PAYLOAD.unpack(body)
            return TimeBounds(first, last) if first <= last else None
        offset += 4 + length
    return None


def read_bounds(path: str | os.PathLike[str]) -> TimeBounds | None:
    """The bounds recorded in a ``.gz`` file's header; None when unknown or unreadable.

    Blocking: call it from a worker thread.
    """
    try:
        with open(path, "rb") as f:
            return parse_bounds(f.read(_HEADER_READ))
    except OSError:
        return None
