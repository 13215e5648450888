"""The entry model: validation, and one entry <-> one JSON line."""

from __future__ import annotations

import enum
import math
import os
import random
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticSerializationError

from ._exceptions import SerializationError

__all__ = ["MAX_NESTING", "MetricEntry", "MetricType"]


class MetricType(str, enum.Enum):  # noqa: UP042 - str() is the value on every version
    """What an entry records. The value is what appears in the ``type`` key on disk."""

    SESSION_START = "session_start"
    SESSION_END = "session_end"
    TOOL_USE = "tool_use"
    AGENT_EXECUTION = "agent_execution"
    CHECKPOINT_CREATED = "checkpoint_created"
    HOOK_TRIGGERED = "hook_triggered"
    COMMAND_EXECUTED = "command_executed"
    ERROR_OCCURRED = "error_occurred"
    TOKEN_USAGE = "token_usage"
    PERFORMANCE = "performance"

    def __str__(self) -> str:
        return self.value


# A private generator, seeded from the OS and re-seeded in every forked child, so
# worker processes forked from one parent never repeat each other's ids.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)

_VERSION_4_BITS = (0x4000 << 64) | (0x8000 << 48)
_VERSION_4_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def _new_id() -> str:
    """A random (version 4) UUID as a string.

    ``str(uuid.uuid4())`` costs a system call per entry; this costs half as much.
    """
    n = (_ids.getrandbits(128) & _VERSION_4_MASK) | _VERSION_4_BITS
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


# Keys must really be strings: in lax mode pydantic would turn b"k" into "k".
JsonObject = dict[Annotated[str, Strict()], JsonValue]

MAX_NESTING = 100
"""How many lists and dicts deep a value in ``data`` or ``metadata`` may be nested
(``{"a": [1]}`` is one deep). Every reader accepts a line this deep: pydantic's JSON
parser, which reads the files back, stops at 200 levels for the whole line."""

INT_LIMIT = 2**1024
"""Integers must lie strictly between ``-INT_LIMIT`` and ``INT_LIMIT``: the range of a
finite float, so every figure of a report (and every engine that reads numbers as
doubles) can hold them. ``10**400`` is refused at the call."""

READING: dict[str, Any] = {"reading": True}
"""The validation context of the read side (``model_validate(d, context=READING)``):
lines already on disk are not held to the limits above. Their parser already refuses
lone surrogates; an integer beyond ``INT_LIMIT`` or a deep value from another writer
is read as it is (a report skips numbers it cannot hold)."""

# Lone surrogates (U+D800-U+DFFF) have no UTF-8 form: a value holding one cannot be
# written, and a key holding one would be written as U+FFFD and collide.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (no lone surrogates); O(1) for ASCII."""
    return text.isascii() or _SURROGATE.search(text) is None


def _problem(value: Any, path: str, depth: int = 0) -> str | None:
    """What makes ``value`` (found at ``path``) impossible to write exactly and read
    back equal, or None. Types are checked by validation; this checks what a type
    cannot say: lone surrogates, integers out of range, nesting depth."""
    if isinstance(value, str):
        return None if _encodable(value) else f"{path} holds a lone surrogate character"
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        if -INT_LIMIT < value < INT_LIMIT:
            return None
        return f"{path} is an integer beyond ±2**1024, which no report can sum"
    if depth > MAX_NESTING:
        shown = path if len(path) <= 60 else f"{path[:60]}..."
        return f"{shown} is nested more than {MAX_NESTING} lists or dicts deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _encodable(key):
                return f"{path} has a key with a lone surrogate character: {key!r}"
            problem = _problem(item, f"{path}.{key}", depth + 1)
            if problem is not None:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = _problem(item, f"{path}[{index}]", depth + 1)
            if problem is not None:
                return problem
    return None


# pydantic writes a UTC datetime with a "Z" suffix. Lines carry "+00:00" instead, which
# every ISO-8601 parser reads, Python 3.10's ``datetime.fromisoformat`` included. The
# keys are always in field order, so the first ``Z","type":`` in a line is the end of
# the timestamp (a quote inside ``id`` would be escaped).
_PYDANTIC_UTC_END = b'Z","type":'
_ISO_UTC_END = b'+00:00","type":'

# Line separators that JSON leaves unescaped but ``str.splitlines()`` splits on.
# Escaping them keeps "one entry, one line" true for every reader.
_UNSAFE_SEPARATORS = (
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
    ("\u0085".encode(), b"\\u0085"),
)


class MetricEntry(BaseModel):
    """One analytics event.

    Every value in ``data`` and ``metadata`` must be representable in JSON: strings,
    finite numbers, booleans, ``None``, lists and string-keyed dicts of those. Anything
    else (sets, bytes, tuples, arbitrary objects, NaN or infinity, non-string keys)
    raises pydantic's ``ValidationError`` naming the offending field path.
    """

    model_config = ConfigDict(
        allow_inf_nan=False,
        validate_assignment=True,
        extra="forbid",
        use_enum_values=False,
    )

    id: Annotated[str, Strict()] = Field(default_factory=_new_id, min_length=1)
    timestamp: datetime = Field(default_factory=_utc_now)
    type: MetricType
    session_id: Annotated[str, Strict()] | None = None
    user_id: Annotated[str, Strict()] | None = None
    data: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)

    @field_validator("id", "session_id", "user_id")
    @classmethod
    def _utf8(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.context is not READING and value is not None and not _encodable(value):
            raise ValueError("holds a lone surrogate character, which UTF-8 cannot encode")
        return value

    @field_validator("data", "metadata")
    @classmethod
    def _exact(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if info.context is not READING and not _plain(value):
            problem = _problem(value, info.field_name or "value")
            if problem is not None:
                raise ValueError(problem)
        return value

    @field_validator("timestamp")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "timestamp must be timezone-aware (for example datetime.now(timezone.utc));"
                " a naive datetime is ambiguous and its zone is never guessed"
            )
        return value.astimezone(UTC)

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as the JSON-compatible dict that is written on disk."""
        result = self.model_dump(mode="json")
        result["timestamp"] = self.timestamp.isoformat()
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricEntry:
        """Build an entry from a dict such as :meth:`to_dict` returns.

        Raises:
            pydantic.ValidationError: the dict is not a valid entry.
        """
        return cls.model_validate(data)

    def to_json_line(self) -> bytes:
        """Serialize to one line of UTF-8 JSON, ending in ``b"\\n"``.

        Raises:
            SerializationError: the entry holds a value JSON cannot represent (it was
                mutated after validation).
        """
        if not (_plain(self.data) and _plain(self.metadata)):
            _refuse_non_json(self)
        try:
            line = self.__pydantic_serializer__.to_json(self).replace(
                _PYDANTIC_UTC_END, _ISO_UTC_END, 1
            )
        except PydanticSerializationError as exc:
            raise SerializationError(f"entry {self.id!r} cannot be serialized: {exc}") from exc
        if not line.isascii() and (b"\xe2\x80" in line or b"\xc2\x85" in line):
            for raw, escaped in _UNSAFE_SEPARATORS:
                line = line.replace(raw, escaped)
        return line + b"\n"

    @classmethod
    def from_json_line(cls, line: str | bytes) -> MetricEntry:
        """Parse one JSON line (with or without its newline) back into an entry.

        What is on disk is taken as it is: the limits that make values read back equal
        (see :data:`MAX_NESTING` and :data:`INT_LIMIT`) are checked when an entry is
        built, not when another writer's line is read.

        Raises:
            pydantic.ValidationError: the line is not valid JSON or not a valid entry.
        """
        entry = cls.model_validate_json(line, context=READING)
        # pydantic's JSON parser accepts NaN and Infinity tokens, and JsonValue lets
        # them through; an entry built in Python could never hold one.
        if (
            (b"NaN" in line or b"Infinity" in line)
            if isinstance(line, bytes)
            else ("NaN" in line or "Infinity" in line)
        ):
            _reject_non_finite(entry)
        return entry


_FIELDS_SET = frozenset(("type", "session_id", "user_id", "data", "metadata"))
_new_object = object.__new__
_set_slot = object.__setattr__
_NoneType = type(None)


def assemble_entry(
    id: str,
    timestamp: datetime,
    type: MetricType,
    session_id: str | None,
    user_id: str | None,
    data: dict[str, Any],
    metadata: dict[str, Any],
    fields_set: set[str],
) -> MetricEntry:
    """The one fast entry builder: a :class:`MetricEntry` made from values already
    known to be what validation would produce, by filling pydantic's internals
    directly instead of validating again.

    Both hot paths use it: :func:`build_entry` (the write path, ``track_*``) and
    ``entry_from_line`` (the read path). Each decides first, by exact type checks,
    that its values are plain; anything unusual goes through pydantic instead. An
    oracle test holds the result to ``MetricEntry(...)`` field for field.

    Args:
        id, timestamp, type, session_id, user_id, data, metadata: the field values,
            exactly as validation would leave them (``timestamp`` aware, in UTC).
        fields_set: the names given explicitly (pydantic's ``model_fields_set``).
    """
    entry = _new_object(MetricEntry)
    _set_slot(
        entry,
        "__dict__",
        {
            "id": id,
            "timestamp": timestamp,
            "type": type,
            "session_id": session_id,
            "user_id": user_id,
            "data": data,
            "metadata": metadata,
        },
    )
    _set_slot(entry, "__pydantic_fields_set__", fields_set)
    _set_slot(entry, "__pydantic_extra__", None)
    _set_slot(entry, "__pydantic_private__", None)
    return entry


PLAIN_DEPTH = 16
"""Containers nested deeper than this go through pydantic, which names any problem."""


def _plain(values: dict[Any, Any], depth: int = 0) -> bool:
    """Whether ``values`` holds only string keys and JSON values that are written
    exactly (no NaN or infinity, no lone surrogates, integers in range; dicts and
    lists of such values up to :data:`PLAIN_DEPTH` levels), checked by exact type:
    what the model would accept unchanged, so validating it again could only cost
    time. Nested dicts and lists are replaced in ``values`` by copies, as validation
    would copy them, so that no entry shares a container with its caller."""
    for key, value in values.items():
        if type(key) is not str or not (key.isascii() or _encodable(key)):
            return False
        if not _plain_scalar(value):
            copy = _plain_copy(value, depth)
            if copy is None:
                return False
            values[key] = copy  # the same key: the dict's size does not change
    return True


def _plain_scalar(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return bool(value.isascii() or _encodable(value))
    if kind is int:
        return bool(-INT_LIMIT < value < INT_LIMIT)
    if kind is bool or kind is _NoneType:
        return True
    return kind is float and value - value == 0.0  # NaN and +-inf give NaN


def _plain_copy(value: Any, depth: int) -> dict[str, Any] | list[Any] | None:
    """A copy of a plain dict or list nested in an entry's values, or None when it is
    not plain (or not a container, or too deep)."""
    if depth >= PLAIN_DEPTH:
        return None
    kind = type(value)
    if kind is dict:
        copied = dict(value)
        return copied if _plain(copied, depth + 1) else None
    if kind is list:
        items = list(value)
        for index, item in enumerate(items):
            if not _plain_scalar(item):
                copy = _plain_copy(item, depth + 1)
                if copy is None:
                    return None
                items[index] = copy
        return items
    return None


def build_entry(
    type: MetricType,
    session_id: str | None,
    user_id: str | None,
    data: dict[str, Any],
    metadata: dict[str, Any],
) -> MetricEntry:
    """Build an entry as ``MetricEntry(type=..., ...)`` would, validating it once.

    The track_* methods build dicts of strings, numbers, booleans and the plain
    dicts and lists a caller passes. Those are checked here by exact type (a few
    hundred nanoseconds for a flat dict) and the entry is assembled directly, which
    is what pydantic's validator would produce for them (a test compares the two on
    generated input). Anything else, subclasses, tuples, deep nesting, bad values,
    goes through pydantic, which accepts or names the problem.

    ``data`` is taken over (the caller built it for this entry); ``metadata`` is
    copied.
    """
    if (
        type.__class__ is MetricType
        and (session_id is None or (session_id.__class__ is str and _encodable(session_id)))
        and (user_id is None or (user_id.__class__ is str and _encodable(user_id)))
        and data.__class__ is dict
        and metadata.__class__ is dict
        and _plain(data)
        and _plain(metadata := dict(metadata))
    ):
        return assemble_entry(
            _new_id(),
            datetime.now(UTC),
            type,
            session_id,
            user_id,
            data,
            metadata,
            set(_FIELDS_SET),
        )
    return MetricEntry(
        type=type, session_id=session_id, user_id=user_id, data=data, metadata=metadata
    )


def _reject_non_finite(entry: MetricEntry) -> None:
    """Raise pydantic's ValidationError if ``data`` or ``metadata`` holds NaN or ±inf."""

    def walk(value: Any, loc: tuple[str | int, ...]) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError.from_exception_data(
                "MetricEntry", [{"type": "finite_number", "loc": loc, "input": value}]
            )
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*loc, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*loc, index))

    walk(entry.data, ("data",))
    walk(entry.metadata, ("metadata",))


def _refuse_non_json(entry: MetricEntry) -> None:
    """Raise SerializationError if ``data`` or ``metadata`` holds anything the model
    would not accept: pydantic's serializer would silently turn a set or tuple into a
    list, NaN or infinity into ``null`` and a lone surrogate in a key into U+FFFD."""

    for field, values in (("data", entry.data), ("metadata", entry.metadata)):
        problem = _problem(values, field)  # first: it bounds the depth walk() meets
        if problem is not None:
            raise SerializationError(f"entry {entry.id!r} cannot be serialized: {problem}")

    def walk(value: Any, path: str) -> None:
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is _NoneType:
            return
        if kind is float:
            if value - value != 0.0:
                raise SerializationError(
                    f"entry {entry.id!r} cannot be serialized: {path} is {value!r},"
                    " which JSON cannot represent"
                )
            return
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str:
                    raise SerializationError(
                        f"entry {entry.id!r} cannot be serialized: {path} has a"
                        f" {type(key).__name__} key {key!r}; keys must be str"
                    )
                walk(item, f"{path}.{key}")
            return
        if kind is list:
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
            return
        if isinstance(value, (str, int, float, dict, list)) or value is None:
            return  # a subclass pydantic accepted at validation
        raise SerializationError(
            f"entry {entry.id!r} cannot be serialized: {path} is a {kind.__name__},"
            " which JSON cannot represent"
        )

    walk(entry.data, "data")
    walk(entry.metadata, "metadata")
