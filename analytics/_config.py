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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ._exceptions import ConfigError
from ._fileops import Compressor, GzipCodec

__all__ = ["DURATION_FORMS", "SIZE_FORMS", "WriterConfig", "option", "parse_duration", "parse_size"]

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
SIZE_FORMS = "an int number of bytes, or a string such as '512 KiB', '100 MiB' or '1 GB'"

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
DURATION_FORMS = (
    "a duration: seconds as a number, a timedelta, or a string such as"
    " '500ms', '30s', '5m', '1h', '7d'"
)


def parse_size(value: Any) -> int:
    """Turn ``value`` into a number of bytes.

    ``KB``, ``MB``, ``GB`` and ``TB`` are powers of 1000; ``KiB``, ``MiB``, ``GiB`` and
    ``TiB`` are powers of 1024; ``B`` or no unit means bytes. Units are case-sensitive,
    so ``"mb"`` (megabits, or a typo?) is rejected rather than guessed.

    Raises:
        ConfigError: the value is not a size (a ``ValueError`` too); the message lists
            the accepted forms.
    """
    if isinstance(value, bool):
        raise ConfigError(f"expected {SIZE_FORMS}, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match is None:
            raise ConfigError(f"{value!r} is not a size: expected {SIZE_FORMS}")
        number, unit = match.groups()
        if unit not in _SIZE_UNITS and unit != "":
            accepted = ", ".join(_SIZE_UNITS)
            raise ConfigError(
                f"unknown size unit {unit!r} in {value!r}: use one of {accepted}"
                " (KB = 1000 bytes, KiB = 1024 bytes; units are case-sensitive)"
            )
        total = float(number) * _SIZE_UNITS.get(unit, 1)
        if not total.is_integer():
            raise ConfigError(f"{value!r} is not a whole number of bytes")
        return int(total)
    raise ConfigError(f"expected {SIZE_FORMS}, got {type(value).__name__} {value!r}")


def parse_duration(value: Any) -> float:
    """Turn ``value`` into seconds, as a float.

    Raises:
        ConfigError: the value is not a duration (a ``ValueError`` too); the message
            lists the accepted forms.
    """
    if isinstance(value, bool):
        raise ConfigError(f"expected {DURATION_FORMS}, got {value!r}")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ConfigError(f"{value!r} is not a duration: expected {DURATION_FORMS}")
        number, unit = match.groups()
        if unit not in _DURATION_UNITS and unit != "":
            accepted = ", ".join(_DURATION_UNITS)
            raise ConfigError(f"unknown duration unit {unit!r} in {value!r}: use one of {accepted}")
        seconds = float(number) * _DURATION_UNITS.get(unit, 1.0)
    else:
        raise ConfigError(f"expected {DURATION_FORMS}, got {type(value).__name__} {value!r}")
    if not math.isfinite(seconds):
        raise ConfigError(f"a duration must be finite, got {value!r}")
    return seconds


ByteSize = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]
Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]

FsyncPolicy = Literal["never", "rotate", "always"]
FullPolicy = Literal["wait", "drop_newest", "raise"]

SIZE = "size"
DURATION = "duration"
WHOLE = "a whole number of at least 1"


def option(
    default: Any,
    kind: str,
    forms: str,
    doc: str,
    *,
    example: str | None = None,
    ge: int | None = None,
    le: int | None = None,
    pattern: str | None = None,
) -> Any:
    """One option, declared once: its default (in the form a user would write it),
    the short ``kind`` and the accepted ``forms`` that the docs table and the error
    messages show, what it does, and an example value for the environment table
    (default: the default itself). ``ge``, ``le`` and ``pattern`` constrain the value."""
    extra: dict[str, Any] = {"kind": kind, "forms": forms}
    if example is not None:
        extra["example"] = example
    return Field(
        default=default,
        validate_default=True,
        description=doc,
        json_schema_extra=extra,
        ge=ge,
        le=le,
        pattern=pattern,
    )


class WriterConfig(BaseModel):
    """Every option of :class:`~analytics.JSONLWriter`, validated once.

    Equal by value, immutable, keyword-only. ``JSONLWriter(base_path, **options)``
    builds one of these; ``JSONLWriter.from_config(config)`` takes one. Load one from
    the environment with :meth:`from_env` or from a TOML or JSON file with
    :meth:`from_file`.

    Each field is declared once, with :func:`option`: the table in
    docs/configuration.md is checked against these declarations by a test.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_path: Path | None = option(
        None,
        "path",
        "a directory path",
        "Files go to `<base_path>/metrics/`. Required: from `JSONLWriter(base_path)`,"
        " `from_config(config, base_path)` or here.",
        example="/var/lib/myservice/analytics",
    )
    max_file_size: ByteSize = option(
        "100 MiB",
        SIZE,
        SIZE_FORMS,
        "Rotate before the active file would grow past this.",
    )
    max_files: int = option(
        10,
        "int ≥ 1",
        WHOLE,
        "Keep at most this many of our files (compressed and not, the active one"
        " counted). The oldest by the time in their names go first.",
        example="50",
        ge=1,
    )
    max_age: Seconds | None = option(
        None,
        "duration or none",
        DURATION_FORMS,
        "Delete our files created longer ago than this (time from the name, never"
        " mtime). Checked after each rotation and on a timer (every quarter of"
        " `max_age`, at most every minute), so a quiet service cleans up too. With"
        " `max_files`, a file goes when either rule says so.",
        example="30d",
    )
    max_unshipped_bytes: ByteSize = option(
        "1 GiB",
        SIZE,
        SIZE_FORMS,
        "With a shipper or an archiver on the directory (`analytics ship`,"
        " `analytics archive`: its checkpoint is there), `max_files` and `max_age` keep"
        " the files it has not shipped or archived yet, up to this many bytes of them;"
        " past that the oldest go, and the lines lost are recorded for it and logged"
        " as an error.",
        example="10 GiB",
    )
    rotate_interval: Seconds | None = option(
        None,
        "duration or none",
        DURATION_FORMS,
        'Also rotate at every multiple of this interval since 1970-01-01 UTC: `"1h"`'
        ' rotates at the top of each UTC hour, `"1d"` at UTC midnight. A timer drives'
        " it: at the boundary, every entry accepted before it is written to the"
        " interval's file (however long `flush_interval` is), which is then closed and"
        " compressed, ready to ship, even if nothing more is written. An empty active"
        " file is left alone at the boundary (a quiet service makes no new files and"
        " no compressions); the next entry starts a new file. If the new file cannot"
        " be created, entries keep going to the active file and the rotation is"
        " retried with backoff ([durability](durability.md)).",
        example="1h",
    )
    compress_old: bool = option(
        True,
        "bool",
        "true or false",
        "gzip each rotated file to `*.jsonl.gz` in a worker thread.",
        example="true",
    )
    compress_level: int = option(
        6,
        "int 1-9",
        "a whole number from 1 to 9",
        "gzip level. 6 is nearly as small as 9 and much faster ([benchmarks](benchmarks.md)).",
        ge=1,
        le=9,
    )
    compressor: Compressor = option(
        "zlib",
        "`zlib`, `isal`",
        "one of zlib, isal",
        "What makes the gzip files: `zlib` (the standard library), or `isal` (Intel's"
        " ISA-L, extra `[isal]`): about 8 times less CPU per file, for files about 6 %"
        " larger; `compress_level` 1-3, 4-6 and 7-9 become its levels 1, 2 and 3. Both"
        " write standard gzip ([benchmarks](benchmarks.md)).",
        example="isal",
    )
    buffer_size: int = option(
        100, "int ≥ 1", WHOLE, "Write once this many entries are buffered.", ge=1
    )
    flush_interval: Seconds = option(
        "1s", DURATION, DURATION_FORMS, "An entry waits in the buffer at most this long."
    )
    fsync: FsyncPolicy = option(
        "rotate",
        "`never`, `rotate`, `always`",
        "one of never, rotate, always",
        "When data is forced to disk; see [durability](durability.md).",
    )
    max_pending: int = option(
        10_000,
        "int ≥ 1",
        WHOLE,
        "Entries accepted but not yet written, at most (bounds memory if the disk fails).",
        ge=1,
    )
    on_full: FullPolicy = option(
        "wait",
        "`wait`, `drop_newest`, `raise`",
        "one of wait, drop_newest, raise",
        "What `write()` does when `max_pending` entries wait.",
    )
    filename_prefix: str = option(
        "metrics",
        "letters, digits, `.`, `_`, `-`",
        "letters, digits, '.', '_' or '-', starting with a letter or digit",
        "File names are `<prefix>_<UTC time>_p<pid>_<tag>.jsonl`. Retention only ever"
        " touches names of this shape.",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    )

    @field_validator("compressor")
    @classmethod
    def _compressor_is_installed(cls, compressor: Compressor) -> Compressor:
        try:
            GzipCodec.of(compressor, 6)  # imported now, not in the writer's life
        except ImportError:
            raise ValueError(
                f"compressor {compressor!r} needs the {compressor} package:"
                f" pip install 'asyncio-jsonl-analytics[{compressor}]'"
            ) from None
        return compressor

    @classmethod
    def env_variable(cls, field: str, prefix: str = "ANALYTICS_") -> str:
        """The environment variable :meth:`from_env` reads ``field`` from."""
        return f"{prefix}{field.upper()}"

    @classmethod
    def forms(cls, field: str) -> str:
        """The accepted forms of ``field``, as error messages name them."""
        extra = cls.model_fields[field].json_schema_extra
        return str(extra["forms"]) if isinstance(extra, dict) else ""

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
            variable = cls.env_variable(field, prefix)
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
                forms = cls.forms(field) if field in cls.model_fields else ""
                message = error["msg"].removeprefix("Value error, ")
                problems.append(
                    f"{where(field)}={shown!r}: {message}"
                    + (f" (expected {forms})" if forms else "")
                )
            raise ConfigError("; ".join(problems)) from exc
