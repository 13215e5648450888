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
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeGuard

__all__ = [
    "BOUNDS_SUBFIELD",
    "EntrySpan",
    "Span",
    "TimeBounds",
    "gzip_header",
    "gzip_trailer",
    "is_aware",
    "read_bounds",
    "widen",
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


Span = tuple[datetime, datetime]
"""The earliest and latest entry time of a batch of entries."""


def is_aware(moment: object) -> TypeGuard[datetime]:
    """Whether ``moment`` is a timezone-aware datetime (one a span can hold). Never
    raises: an entry built without validation may hold a tzinfo that fails."""
    try:
        return isinstance(moment, datetime) and moment.utcoffset() is not None
    except Exception:  # a broken tzinfo of an unvalidated entry: no span, no error
        return False


def widen(span: Span | None, other: Span) -> Span:
    """``span`` grown to cover ``other`` (``other`` if there is no ``span``)."""
    if span is None:
        return other
    return (min(span[0], other[0]), max(span[1], other[1]))


class EntrySpan:
    """The earliest and latest entry time in one file, grown by the span of every batch
    that puts lines in it. A batch split over two files gives both its whole span: a
    span wider than the file's entries is still true (readers open the file a little
    more often), one narrower would hide entries, and is never made.

    Unknown (``None`` bounds) when the file held lines before this span saw it (a file
    continued from an earlier process), or took lines without a span: a file without
    bounds is simply read.
    """

    def __init__(self, *, complete: bool = True) -> None:
        self.known = complete
        self._span: Span | None = None

    def add(self, span: Span | None) -> None:
        """Take in a batch (or part of one) whose entries lie within ``span``."""
        if span is None:
            self.known = False
        elif self.known:
            self._span = widen(self._span, span)

    def bounds(self) -> TimeBounds | None:
        """The span of every batch taken in; ``None`` if unknown or empty."""
        if not self.known or self._span is None:
            return None
        return TimeBounds.of(*self._span)


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
