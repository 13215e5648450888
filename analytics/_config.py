"""Writer options: one frozen, validated value object, and the unit parsers it uses."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = ["WriterConfig", "parse_duration", "parse_size"]

_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_SIZE_FORMS = "an int number of bytes, or a string such as '512 KiB', '100 MiB' or '1 GB'"

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
_DURATION_FORMS = (
    "a duration: seconds as a number, a timedelta, or a string such as"
    " '500ms', '30s', '5m', '1h', '7d'"
)


def parse_size(value: Any) -> int:
    """Turn ``value`` into a number of bytes.

    ``KB``, ``MB``, ``GB`` and ``TB`` are powers of 1000; ``KiB``, ``MiB``, ``GiB`` and
    ``TiB`` are powers of 1024; ``B`` or no unit means bytes. Units are case-sensitive,
    so ``"mb"`` (megabits, or a typo?) is rejected rather than guessed.

    Raises:
        ValueError: the value is not a size; the message lists the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {_SIZE_FORMS}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a size: expected {_SIZE_FORMS}")
        number, unit = match.groups()
        if unit not in _SIZE_UNITS and unit != "":
            accepted = ", ".join(_SIZE_UNITS)
            raise ValueError(
                f"unknown size unit {unit!r} in {value!r}: use one of {accepted}"
                " (KB = 1000 bytes, KiB = 1024 bytes; units are case-sensitive)"
            )
        total = float(number) * _SIZE_UNITS.get(unit, 1)
        if not total.is_integer():
            raise ValueError(f"{value!r} is not a whole number of bytes")
        return int(total)
    raise ValueError(f"expected {_SIZE_FORMS}, got {type(value).__name__} {value!r}")


def parse_duration(value: Any) -> float:
    """Turn ``value`` into seconds, as a float.

    Raises:
        ValueError: the value is not a duration; the message lists the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {_DURATION_FORMS}, got {value!r}")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration: expected {_DURATION_FORMS}")
        number, unit = match.groups()
        if unit not in _DURATION_UNITS and unit != "":
            accepted = ", ".join(_DURATION_UNITS)
            raise ValueError(f"unknown duration unit {unit!r} in {value!r}: use one of {accepted}")
        seconds = float(number) * _DURATION_UNITS.get(unit, 1.0)
    else:
        raise ValueError(f"expected {_DURATION_FORMS}, got {type(value).__name__} {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be finite, got {value!r}")
    return seconds


ByteSize = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]

FsyncPolicy = Literal["never", "rotate", "always"]
FullPolicy = Literal["wait", "drop_newest", "raise"]


class WriterConfig(BaseModel):
    """Every option of :class:`~analytics.JSONLWriter`, validated once.

    Equal by value, immutable, keyword-only. ``JSONLWriter(base_path, **options)``
    builds one of these; ``JSONLWriter.from_config(base_path, config)`` takes one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_file_size: ByteSize = 100 * 1024 * 1024
    """Rotate before the active file would grow past this many bytes."""

    max_files: int = Field(default=10, ge=1)
    """Keep at most this many of our files in the directory, the active one counted."""

    compress_old: bool = True
    """gzip rotated files to ``*.jsonl.gz`` in a worker thread."""

    compress_level: int = Field(default=6, ge=1, le=9)
    """gzip level for rotated files: 6 is nearly as small as 9 and much faster."""

    buffer_size: int = Field(default=100, ge=1)
    """Write the buffer once it holds this many entries."""

    flush_interval: Seconds = 1.0
    """Write the buffer at the latest this long after its oldest entry arrived."""

    fsync: FsyncPolicy = "rotate"
    """When to force data to stable storage: "never", "rotate" or "always"."""

    max_pending: int = Field(default=10_000, ge=1)
    """Entries accepted but not yet written, at most (bounds memory if the disk fails)."""

    on_full: FullPolicy = "wait"
    """What ``write()`` does when ``max_pending`` entries are waiting."""

    filename_prefix: str = Field(default="metrics", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """File names start with this, then ``_<UTC time>_p<pid>_<tag>.jsonl``."""
