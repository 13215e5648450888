"""Writer options: one frozen, validated value object, and the unit parsers it uses."""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ._exceptions import ConfigError

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
    builds one of these; ``JSONLWriter.from_config(config)`` takes one. Load one from
    the environment with :meth:`from_env` or from a TOML or JSON file with
    :meth:`from_file`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_path: Path | None = None
    """Where files go (``<base_path>/metrics/``); ``JSONLWriter(base_path)`` sets it."""

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

    rotate_interval: Seconds | None = None
    """Also rotate at every multiple of this interval since 1970-01-01 UTC (``"1h"``
    rotates at the top of each UTC hour), driven by a timer even when nothing is
    written. ``None``: rotate by size only."""

    max_age: Seconds | None = None
    """Delete our files created (by the time in their names) longer ago than this.
    Checked after each rotation and on a timer. ``None``: no age limit."""

    @classmethod
    def from_env(
        cls, prefix: str = "ANALYTICS_", environ: Mapping[str, str] | None = None
    ) -> WriterConfig:
        """Read options from environment variables: ``<prefix><OPTION>`` in upper case
        (``ANALYTICS_MAX_FILE_SIZE=100MiB``). Unset variables keep their defaults.

        Raises:
            ConfigError: a variable has an invalid value; the message names the
                variable and the accepted forms.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        names: dict[str, str] = {}
        for field in cls.model_fields:
            variable = f"{prefix}{field.upper()}"
            if variable in env:
                raw[field] = env[variable]
                names[field] = variable
        return cls._validated(raw, lambda field: names.get(field, field))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> WriterConfig:
        """Load options from a ``.toml`` or ``.json`` file.

        The options may be at the top level or in an ``[analytics]`` table (TOML) or
        ``"analytics"`` object (JSON). Keys are the option names.

        Raises:
            ConfigError: the file cannot be read or parsed, has an unknown key, or a
                value is invalid; the message names the file and the option.
        """
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
            if file.suffix == ".toml":
                data: Any = tomllib.loads(text)
            elif file.suffix == ".json":
                data = json.loads(text)
            else:
                raise ConfigError(f"{file}: use a .toml or .json file")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load {file}: {exc}") from exc
        if isinstance(data, dict) and isinstance(data.get("analytics"), dict):
            data = data["analytics"]
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: expected a table of options")
        return cls._validated(data, lambda field: f"{file}: {field}")

    @classmethod
    def _validated(cls, values: Mapping[str, Any], where: Any) -> WriterConfig:
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                field = str(error["loc"][0]) if error["loc"] else "?"
                shown = values.get(field, "") if isinstance(values, Mapping) else ""
                forms = _FORMS.get(field, "")
                message = error["msg"].removeprefix("Value error, ")
                problems.append(
                    f"{where(field)}={shown!r}: {message}"
                    + (f" (expected {forms})" if forms else "")
                )
            raise ConfigError("; ".join(problems)) from exc


_FORMS = {
    "base_path": "a directory path",
    "max_file_size": _SIZE_FORMS,
    "max_files": "a whole number of at least 1",
    "compress_old": "true or false",
    "compress_level": "a whole number from 1 to 9",
    "buffer_size": "a whole number of at least 1",
    "flush_interval": _DURATION_FORMS,
    "fsync": "one of never, rotate, always",
    "max_pending": "a whole number of at least 1",
    "on_full": "one of wait, drop_newest, raise",
    "filename_prefix": "letters, digits, '.', '_' or '-', starting with a letter or digit",
    "rotate_interval": _DURATION_FORMS,
    "max_age": _DURATION_FORMS,
}
