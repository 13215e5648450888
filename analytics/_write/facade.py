"""MetricsWriter: one ``track_*`` coroutine per MetricType, plus timing helpers."""

from __future__ import annotations

import logging
import time as _time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from pydantic import JsonValue

from .._exceptions import ArgumentTypeError
from .._models import MetricEntry, MetricType, build_entry
from .sinks import Sink

__all__ = ["Fanout", "MetricsWriter", "Timing"]

logger = logging.getLogger("analytics")

_SINK_LOG_EVERY = 30.0
"""While a sink keeps failing, log it at most once per this many seconds."""


class Timing:
    """What a ``time_*`` block records; add fields to ``data`` inside the block."""

    def __init__(self) -> None:
        self.data: dict[str, JsonValue] = {}
        self.entry: MetricEntry | None = None
        """The entry written when the block ended."""


def _bad(name: str, expected: str, value: object) -> TypeError:
    return ArgumentTypeError(f"{name} must be {expected}, not {type(value).__name__} {value!r}")


def _str(name: str, value: object) -> None:
    if value.__class__ is not str and not isinstance(value, str):
        raise _bad(name, "a str", value)


def _bool(name: str, value: object) -> None:
    if value.__class__ is not bool:
        raise _bad(name, "a bool (True or False)", value)


def _int(name: str, value: object) -> None:
    if value.__class__ is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise _bad(name, "an int", value)


def _num(name: str, value: object) -> None:
    kind = value.__class__
    if (
        kind is not float
        and kind is not int
        and (not isinstance(value, (int, float)) or isinstance(value, bool))
    ):
        raise _bad(name, "a number (int or float)", value)


def _opt(check: Callable[[str, object], None], name: str, value: object) -> None:
    if value is not None:
        check(name, value)


def _data(fields: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge named fields (dropping ``None``) with the caller's extra keyword fields."""
    merged = {key: value for key, value in fields.items() if value is not None}
    merged.update(extra)
    return merged


class Fanout:
    """Owns the sinks of a :class:`MetricsWriter`: sending each entry (and each flush
    and close) to every one of them, in order. With one sink, its errors reach the
    caller unchanged; with several, a failing sink does not stop the others: its
    error is counted and logged (at most every 30 s per sink)."""

    def __init__(self, sinks: tuple[Sink, ...]) -> None:
        self.sinks = sinks
        self.errors: dict[int, int] = {}  # failures per sink, by index
        self.last_logged: dict[int, float] = {}

    async def write(self, entry: MetricEntry) -> None:
        """Send ``entry`` to every sink."""
        if len(self.sinks) == 1:
            await self.sinks[0].write(entry)
            return
        for index, sink in enumerate(self.sinks):
            try:
                await sink.write(entry)
            except Exception as exc:
                self.failed(index, sink, "write", exc)

    async def each(self, action: str) -> None:
        """Call ``flush`` or ``close`` on every sink."""
        if len(self.sinks) == 1:
            await getattr(self.sinks[0], action)()
            return
        for index, sink in enumerate(self.sinks):
            try:
                await getattr(sink, action)()
            except Exception as exc:
                self.failed(index, sink, action, exc)

    def failed(self, index: int, sink: Sink, action: str, exc: Exception) -> None:
        """Count and (rate-limited) log one sink's failure."""
        self.errors[index] = self.errors.get(index, 0) + 1
        now = _time.monotonic()
        if now - self.last_logged.get(index, -_SINK_LOG_EVERY) >= _SINK_LOG_EVERY:
            self.last_logged[index] = now
            logger.error(
                "sink %r failed to %s (%d failure(s) so far); the other sinks go on: %s",
                sink,
                action,
                self.errors[index],
                exc,
            )


class MetricsWriter:
    """Records typed analytics events and sends each to one or more sinks.

    Owns the per-writer defaults (``user_id``, ``metadata``), the argument checks of
    each ``track_*`` method, and building the entry; sending it is its
    :class:`Fanout`'s.

    Every ``track_*`` and ``time_*`` method takes its arguments in one order:
    ``session_id`` first, then the subject (a tool, agent, hook, command, model,
    operation...), then the subject's details, then ``success``, then
    ``duration_ms``, then optional extras; further keyword arguments go into
    ``data``. (``tests/test_design_rules.py`` holds every method to it.)

    Every ``track_*`` coroutine builds one :class:`MetricEntry` (validated once),
    sends it to every sink, and returns it. Extra keyword arguments go into ``data``;
    they must be JSON values, or pydantic's ``ValidationError`` names the bad one.

    With one sink, its errors reach the caller unchanged. With several, a failing
    sink does not stop the others: its error is logged (at most every 30 s per sink)
    and counted in :attr:`sink_errors`.

    Args:
        sinks: where entries go, usually an open :class:`JSONLWriter`, perhaps with a
            :class:`LoggingSink` beside it.
        user_id: a default ``user_id`` for every entry that does not give one.
        metadata: default ``metadata`` merged into every entry.
    """

    def __init__(
        self,
        *sinks: Sink,
        user_id: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> None:
        if not sinks:
            raise ArgumentTypeError("MetricsWriter needs at least one sink, such as a JSONLWriter")
        self._fanout = Fanout(sinks)
        self._single = sinks[0] if len(sinks) == 1 else None  # the hot path's shortcut
        self._user_id = user_id
        self._metadata = dict(metadata or {})

    @property
    def writer(self) -> Sink:
        """The first sink (the only one, usually)."""
        return self._fanout.sinks[0]

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """Every sink, in the order entries are sent to them."""
        return self._fanout.sinks

    @property
    def sink_errors(self) -> int:
        """How many times a sink failed (with several sinks; one sink raises instead)."""
        return sum(self._fanout.errors.values())

    async def flush(self) -> None:
        """Flush every sink."""
        await self._fanout.each("flush")

    async def close(self) -> None:
        """Close every sink."""
        await self._fanout.each("close")

    async def track(
        self,
        type: MetricType | str,
        data: Mapping[str, JsonValue] | None = None,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> MetricEntry:
        """Record an entry of any type.

        Raises:
            pydantic.ValidationError: a value is not valid (names the field path).
        """
        return await self._record(
            type if type.__class__ is MetricType else MetricType(type),
            dict(data) if data else {},
            session_id,
            user_id,
            metadata,
        )

    async def _record(
        self,
        type: MetricType,
        data: dict[str, Any],
        session_id: str | None,
        user_id: str | None = None,
        metadata: Mapping[str, JsonValue] | None = None,
    ) -> MetricEntry:
        # The one place entries are built: validated once here, serialized once by the
        # writer. ``data`` was built for this entry; ``metadata`` is copied, so no
        # entry shares a dict with the caller or with another entry.
        entry = build_entry(
            type,
            session_id,
            user_id if user_id is not None else self._user_id,
            data,
            {**self._metadata, **metadata} if metadata else self._metadata,
        )
        if self._single is not None:
            await self._single.write(entry)  # the common case, one await deep
        else:
            await self._fanout.write(entry)
        return entry

    async def track_session_start(
        self,
        session_id: str,
        user_id: str | None = None,
        project_path: str | None = None,
        model: str | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """A session began."""
        if project_path is not None:
            _str("project_path", project_path)
        if model is not None:
            _str("model", model)
        data = _data({"project_path": project_path, "model": model}, kwargs)
        return await self._record(MetricType.SESSION_START, data, session_id, user_id)

    async def track_session_end(
        self,
        session_id: str,
        user_id: str | None = None,
        duration_seconds: float | None = None,
        token_count: int | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """A session ended."""
        if duration_seconds is not None:
            _num("duration_seconds", duration_seconds)
        if token_count is not None:
            _int("token_count", token_count)
        data = _data({"duration_seconds": duration_seconds, "token_count": token_count}, kwargs)
        return await self._record(MetricType.SESSION_END, data, session_id, user_id)

    async def track_tool_use(
        self,
        session_id: str | None,
        tool_name: str,
        success: bool,
        duration_ms: float | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """A tool was called."""
        if tool_name.__class__ is not str:
            _str("tool_name", tool_name)
        if success.__class__ is not bool:
            _bool("success", success)
        # The hottest call in most services: build ``data`` without the generic merge.
        data: dict[str, Any] = {"tool_name": tool_name, "success": success}
        if duration_ms is not None:
            kind = duration_ms.__class__
            if kind is not float and kind is not int:
                _num("duration_ms", duration_ms)
            data["duration_ms"] = duration_ms
        if kwargs:
            data.update(kwargs)
        return await self._record(MetricType.TOOL_USE, data, session_id)

    async def track_agent_execution(
        self,
        session_id: str | None,
        agent_name: str,
        success: bool,
        duration_ms: float | None = None,
        task: str | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """An agent (or sub-agent) ran a task."""
        _str("agent_name", agent_name)
        _bool("success", success)
        _opt(_num, "duration_ms", duration_ms)
        _opt(_str, "task", task)
        data = _data(
            {
                "agent_name": agent_name,
                "success": success,
                "duration_ms": duration_ms,
                "task": task,
            },
            kwargs,
        )
        return await self._record(MetricType.AGENT_EXECUTION, data, session_id)

    async def track_checkpoint_created(
        self,
        session_id: str | None,
        checkpoint_id: str,
        description: str | None = None,
        files_changed: int | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """A checkpoint (a saved state that can be restored) was created."""
        _str("checkpoint_id", checkpoint_id)
        _opt(_str, "description", description)
        _opt(_int, "files_changed", files_changed)
        data = _data(
            {
                "checkpoint_id": checkpoint_id,
                "description": description,
                "files_changed": files_changed,
            },
            kwargs,
        )
        return await self._record(MetricType.CHECKPOINT_CREATED, data, session_id)

    async def track_hook_triggered(
        self,
        session_id: str | None,
        hook_name: str,
        event: str | None = None,
        success: bool | None = None,
        duration_ms: float | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """A hook ran in response to an event."""
        _str("hook_name", hook_name)
        _opt(_str, "event", event)
        _opt(_bool, "success", success)
        _opt(_num, "duration_ms", duration_ms)
        data = _data(
            {
                "hook_name": hook_name,
                "event": event,
                "success": success,
                "duration_ms": duration_ms,
            },
            kwargs,
        )
        return await self._record(MetricType.HOOK_TRIGGERED, data, session_id)

    async def track_command_executed(
        self,
        session_id: str | None,
        command: str,
        exit_code: int | None = None,
        success: bool | None = None,
        duration_ms: float | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """A command was run. ``success`` defaults to ``exit_code == 0`` when only the
        exit code is given."""
        _str("command", command)
        _opt(_int, "exit_code", exit_code)
        _opt(_bool, "success", success)
        _opt(_num, "duration_ms", duration_ms)
        if success is None and exit_code is not None:
            success = exit_code == 0
        data = _data(
            {
                "command": command,
                "exit_code": exit_code,
                "duration_ms": duration_ms,
                "success": success,
            },
            kwargs,
        )
        return await self._record(MetricType.COMMAND_EXECUTED, data, session_id)

    async def track_error(
        self,
        session_id: str | None,
        error_type: str,
        error_message: str,
        stack_trace: str | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """An error occurred."""
        _str("error_type", error_type)
        _str("error_message", error_message)
        _opt(_str, "stack_trace", stack_trace)
        data = _data(
            {"error_type": error_type, "error_message": error_message, "stack_trace": stack_trace},
            kwargs,
        )
        return await self._record(MetricType.ERROR_OCCURRED, data, session_id)

    async def track_token_usage(
        self,
        session_id: str | None,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        cost_usd: float | None = None,
        **kwargs: Any,
    ) -> MetricEntry:
        """Tokens were consumed by a model call. ``total_tokens`` is added for you."""
        _str("model", model)
        _int("input_tokens", input_tokens)
        _int("output_tokens", output_tokens)
        _opt(_int, "cache_read_tokens", cache_read_tokens)
        _opt(_int, "cache_write_tokens", cache_write_tokens)
        _opt(_num, "cost_usd", cost_usd)
        data = _data(
            {
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "cache_read_tokens": cache_read_tokens,
                "cache_write_tokens": cache_write_tokens,
                "cost_usd": cost_usd,
            },
            kwargs,
        )
        return await self._record(MetricType.TOKEN_USAGE, data, session_id)

    async def track_performance(
        self,
        session_id: str | None,
        operation: str,
        success: bool,
        duration_ms: float,
        **kwargs: Any,
    ) -> MetricEntry:
        """An operation took ``duration_ms``."""
        _str("operation", operation)
        _bool("success", success)
        _num("duration_ms", duration_ms)
        data = _data(
            {"operation": operation, "duration_ms": duration_ms, "success": success}, kwargs
        )
        return await self._record(MetricType.PERFORMANCE, data, session_id)

    @asynccontextmanager
    async def time_tool(
        self, session_id: str | None, tool_name: str, **kwargs: Any
    ) -> AsyncIterator[Timing]:
        """Time the block and record a ``tool_use`` entry when it ends.

        If the block raises, the entry has ``success: false`` and ``error_type``
        (the exception's class name), and the exception is re-raised.
        """
        timing = Timing()
        started = _time.perf_counter()
        try:
            yield timing
        except BaseException as exc:
            timing.entry = await self.track_tool_use(
                session_id,
                tool_name,
                False,
                _elapsed_ms(started),
                error_type=type(exc).__name__,
                **{**kwargs, **timing.data},
            )
            raise
        timing.entry = await self.track_tool_use(
            session_id, tool_name, True, _elapsed_ms(started), **{**kwargs, **timing.data}
        )

    @asynccontextmanager
    async def time_operation(
        self, session_id: str | None, operation: str, **kwargs: Any
    ) -> AsyncIterator[Timing]:
        """Time the block and record a ``performance`` entry when it ends.

        If the block raises, the entry has ``success: false`` and ``error_type``
        (the exception's class name), and the exception is re-raised.
        """
        timing = Timing()
        started = _time.perf_counter()
        try:
            yield timing
        except BaseException as exc:
            timing.entry = await self.track_performance(
                session_id,
                operation,
                False,
                _elapsed_ms(started),
                error_type=type(exc).__name__,
                **{**kwargs, **timing.data},
            )
            raise
        timing.entry = await self.track_performance(
            session_id, operation, True, _elapsed_ms(started), **{**kwargs, **timing.data}
        )


def _elapsed_ms(started: float) -> float:
    return (_time.perf_counter() - started) * 1000.0
