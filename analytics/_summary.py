"""Summaries of what the files hold: counts, tool and operation latency, agents,
commands, hooks, checkpoints, sessions, errors, tokens."""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, Unpack

from pydantic import BaseModel, Field
from pydantic_core import to_json

from ._files import ReadStats, line_batches, resolve_metrics_dir, select_files
from ._filter import Filter, FilterKeywords
from ._models import MetricEntry
from ._rows import fields_from_line, hour_of

__all__ = [
    "CheckpointStats",
    "Quantiles",
    "RunStats",
    "Summary",
    "summarize",
    "summarize_entries",
]

logger = logging.getLogger("analytics")

EXACT_LIMIT = 100_000
"""Up to this many values per series, percentiles are exact; beyond, they come from a
log-bucketed sketch whose answers are within ``RELATIVE_ERROR`` of an exact rank."""

RELATIVE_ERROR = 0.01


class Quantiles:
    """Percentiles of a stream: exact for modest data, then approximate with a
    guaranteed relative error of 1% and memory that stays small."""

    def __init__(self, exact_limit: int = EXACT_LIMIT) -> None:
        self.exact_limit = exact_limit
        self.values: list[float] | None = []
        self.count = 0
        self.maximum = -math.inf
        self._gamma = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
        self._log_gamma = math.log(self._gamma)
        self._buckets: Counter[int] = Counter()
        self._low = 0  # values <= 0, kept exactly as a count (durations are >= 0)

    @property
    def exact(self) -> bool:
        return self.values is not None

    def add(self, value: float) -> None:
        self.count += 1
        if value > self.maximum:
            self.maximum = value
        values = self.values
        if values is not None:
            values.append(value)
            if self.count > self.exact_limit:
                for v in values:
                    self._bucket(v)
                self.values = None
        else:
            self._bucket(value)

    def merge(self, other: Quantiles) -> None:
        """Add every value ``other`` holds (or its sketch), as if added one by one."""
        self.count += other.count
        self.maximum = max(self.maximum, other.maximum)
        if self.values is not None and other.values is not None:
            self.values.extend(other.values)
            if self.count <= self.exact_limit:
                return
            for v in self.values:
                self._bucket(v)
            self.values = None
            return
        if self.values is not None:  # other is a sketch: so is the result
            for v in self.values:
                self._bucket(v)
            self.values = None
        if other.values is not None:
            for v in other.values:
                self._bucket(v)
        else:
            self._buckets.update(other._buckets)
            self._low += other._low

    def _bucket(self, value: float) -> None:
        if value <= 0:
            self._low += 1
        else:
            self._buckets[math.ceil(math.log(value) / self._log_gamma)] += 1

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile (0 < q <= 1), or ``None`` if empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if self.values is not None:
            return sorted(self.values)[rank - 1]
        if rank <= self._low:
            return 0.0
        seen = self._low
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                # The middle of the bucket, in relative terms: within RELATIVE_ERROR.
                return min(2 * self._gamma**index / (self._gamma + 1), self.maximum)
        return self.maximum


class ToolStats(BaseModel):
    calls: int = 0
    failures: int = 0
    success_rate: float | None = None
    duration_ms_p50: float | None = None
    duration_ms_p95: float | None = None
    duration_ms_p99: float | None = None
    duration_ms_max: float | None = None


class RunStats(BaseModel):
    """Figures of one operation, agent, command or hook."""

    count: int = 0
    failures: int = 0
    """Entries with ``success: false`` (for commands without ``success``: a non-zero
    ``exit_code``)."""
    success_rate: float | None = None
    duration_ms_p50: float | None = None
    duration_ms_p95: float | None = None
    duration_ms_p99: float | None = None
    duration_ms_max: float | None = None


class CheckpointStats(BaseModel):
    """Figures of the ``checkpoint_created`` entries."""

    count: int = 0
    sessions: int = 0
    """Distinct session ids that created a checkpoint."""
    files_changed_total: int = 0
    files_changed_mean: float | None = None
    """Over the checkpoints that report ``files_changed``."""
    files_changed_max: int | None = None


class SessionStats(BaseModel):
    count: int = 0
    """Distinct session ids seen."""
    duration_s_p50: float | None = None
    duration_s_max: float | None = None
    duration_s_mean: float | None = None
    tokens_total: int = 0
    tokens_per_session_mean: float | None = None


class ErrorStats(BaseModel):
    count: int = 0
    example: str = ""


class ModelTokens(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class Summary(BaseModel):
    """What ``summarize`` found. ``model_dump_json()`` gives it as JSON."""

    first: datetime | None = None
    last: datetime | None = None
    entries: int = 0
    by_type: dict[str, int] = Field(default_factory=dict)
    tools: dict[str, ToolStats] = Field(default_factory=dict)
    operations: dict[str, RunStats] = Field(default_factory=dict)
    """``performance`` entries per ``operation`` (request timings among them)."""
    agents: dict[str, RunStats] = Field(default_factory=dict)
    """``agent_execution`` entries per ``agent_name``."""
    commands: dict[str, RunStats] = Field(default_factory=dict)
    """``command_executed`` entries per ``command``."""
    hooks: dict[str, RunStats] = Field(default_factory=dict)
    """``hook_triggered`` entries per ``hook_name``."""
    checkpoints: CheckpointStats = Field(default_factory=CheckpointStats)
    sessions: SessionStats = Field(default_factory=SessionStats)
    errors: dict[str, ErrorStats] = Field(default_factory=dict)
    tokens_by_model: dict[str, ModelTokens] = Field(default_factory=dict)
    bucket: Literal["hour", "day"] = "hour"
    timeline: dict[str, int] = Field(default_factory=dict)
    """Entries per bucket, keyed by the bucket's start (ISO-8601, UTC)."""
    bad_lines: int = 0
    percentiles_exact: bool = True
    """False when some series was beyond ``EXACT_LIMIT`` values (1% relative error)."""


def _number(value: Any) -> float | None:
    """A JSON number as a float; ``None`` for anything else, and for a number no float
    holds (an integer beyond about 1.8e308, or an infinity a line spelled as 1e999):
    such values are skipped, never summed."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None  # NaN and +-inf give NaN
    if kind is bool or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if value - value == 0.0 else None


COUNT_LIMIT = 2**63
"""A count (tokens, files changed) is used when its magnitude is below this; larger
values are skipped, as the duckdb engine's 64-bit integers would overflow."""


def _count(value: Any) -> int | None:
    """A JSON number as a count (truncated to an integer), or ``None``."""
    number = _number(value)
    if number is None or not -COUNT_LIMIT < number < COUNT_LIMIT:
        return None
    return int(number)


def _name(value: Any) -> str:
    """The name an entry gives (a tool's, an operation's...): a string as it is, ``?``
    when missing or null, and anything else as its JSON text (as DuckDB gives it)."""
    if value is None:
        return "?"
    if type(value) is str:
        return value
    return to_json(value).decode()


class _Runs:
    """Counts, failures and durations of named things that run (tools, operations,
    agents, commands, hooks), from one field of ``data`` that names them."""

    def __init__(self, key: str, exit_codes: bool = False) -> None:
        self.key = key
        self.exit_codes = exit_codes  # commands: no ``success``, a non-zero exit fails
        self.counts: dict[str, int] = {}
        self.failures: dict[str, int] = {}
        self.durations: dict[str, Quantiles] = {}

    def add(self, data: dict[str, Any]) -> None:
        name = data.get(self.key)
        if type(name) is not str:
            name = _name(name)
        counts = self.counts
        counts[name] = counts.get(name, 0) + 1
        success = data.get("success")
        if success is False or (
            self.exit_codes
            and type(success) is not bool
            and _number(data.get("exit_code")) not in (None, 0.0)
        ):
            self.failures[name] = self.failures.get(name, 0) + 1
        self.add_duration(name, data.get("duration_ms"))

    def add_duration(self, name: str, duration: Any) -> None:
        if type(duration) is not float or duration - duration != 0.0:
            duration = _number(duration)
            if duration is None:
                return
        series = self.durations.get(name)
        if series is None:
            series = self.durations[name] = Quantiles()
        series.add(duration)

    def merge(self, other: _Runs) -> None:
        for mine, theirs in ((self.counts, other.counts), (self.failures, other.failures)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        for name, series in other.durations.items():
            if name in self.durations:
                self.durations[name].merge(series)
            else:
                self.durations[name] = series

    def figures(self) -> tuple[dict[str, dict[str, Any]], bool]:
        """Per name (sorted): count, failures, success rate and duration percentiles;
        and whether every percentile is exact."""
        result = {}
        exact = True
        for name in sorted(self.counts):
            q = self.durations.get(name) or Quantiles()
            exact = exact and q.exact
            count = self.counts[name]
            failures = self.failures.get(name, 0)
            result[name] = {
                "count": count,
                "failures": failures,
                "success_rate": (count - failures) / count,
                "duration_ms_p50": q.quantile(0.50),
                "duration_ms_p95": q.quantile(0.95),
                "duration_ms_p99": q.quantile(0.99),
                "duration_ms_max": q.maximum if q.count else None,
            }
        return result, exact


_RUN_KEYS = {
    "performance": "operation",
    "agent_execution": "agent_name",
    "command_executed": "command",
    "hook_triggered": "hook_name",
}
"""The entry types summarized as runs, and the ``data`` field naming each run."""


class _Totals:
    """Everything a :class:`Summary` is computed from, added one entry at a time.

    Nothing here depends on the order entries arrive in (the earliest error message,
    the first session start, the last session end are chosen by timestamp), so files
    can be summarized one after another without merging them.
    """

    def __init__(self) -> None:
        self.count = 0
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.by_type: dict[str, int] = {}
        self.hours: dict[str, int] = {}  # "YYYY-MM-DDTHH" (UTC) -> entries
        self.tools = _Runs("tool_name")
        self.runs = {
            kind: _Runs(key, kind == "command_executed") for kind, key in _RUN_KEYS.items()
        }
        self.checkpoints = 0
        self.checkpoint_sessions: set[str] = set()
        self.files_changed: list[int] = []  # of checkpoints reporting it: [n, total, max]
        self.sessions: set[str] = set()
        self.session_start: dict[str, datetime] = {}
        self.session_end: dict[str, datetime] = {}
        self.session_reported: dict[str, tuple[datetime, float]] = {}
        self.session_tokens: dict[str, int] = {}
        self.errors: dict[str, list[Any]] = {}  # kind -> [count, first seen, example]
        self.models: dict[str, ModelTokens] = {}

    def add(
        self,
        kind: str,
        moment: datetime,
        hour: str,
        session_id: str | None,
        data: dict[str, Any],
    ) -> None:
        """Count one entry. ``moment`` is in UTC; ``hour`` is its first 13 characters
        in ISO form."""
        self.count += 1
        first = self.first
        if first is None:
            self.first = self.last = moment
        elif moment < first:
            self.first = moment
        elif moment > self.last:  # type: ignore[operator]
            self.last = moment
        by_type = self.by_type
        by_type[kind] = by_type.get(kind, 0) + 1
        hours = self.hours
        hours[hour] = hours.get(hour, 0) + 1
        if session_id is not None:
            self.sessions.add(session_id)
        if kind == "tool_use":
            # The commonest entry: _Runs.add, inlined.
            tools = self.tools
            name = data.get("tool_name")
            if type(name) is not str:
                name = _name(name)
            calls = tools.counts
            calls[name] = calls.get(name, 0) + 1
            if data.get("success") is False:
                failures = tools.failures
                failures[name] = failures.get(name, 0) + 1
            duration = data.get("duration_ms")
            if type(duration) is float and duration - duration == 0.0:
                series = tools.durations.get(name)
                if series is None:
                    series = tools.durations[name] = Quantiles()
                series.add(duration)
            elif duration is not None:
                tools.add_duration(name, duration)
        elif kind in _RUN_KEYS:
            self.runs[kind].add(data)
        elif kind == "checkpoint_created":
            self.checkpoints += 1
            if session_id is not None:
                self.checkpoint_sessions.add(session_id)
            changed = _count(data.get("files_changed"))
            if changed is not None:
                files = self.files_changed
                if not files:
                    files += (1, changed, changed)
                else:
                    files[0] += 1
                    files[1] += changed
                    if changed > files[2]:
                        files[2] = changed
        elif kind == "session_start":
            if session_id is not None:
                known = self.session_start.get(session_id)
                if known is None or moment < known:
                    self.session_start[session_id] = moment
        elif kind == "session_end":
            if session_id is not None:
                known = self.session_end.get(session_id)
                if known is None or moment >= known:
                    self.session_end[session_id] = moment
                reported = _number(data.get("duration_seconds"))
                if reported is not None:
                    latest = self.session_reported.get(session_id)
                    if latest is None or moment >= latest[0]:
                        self.session_reported[session_id] = (moment, reported)
        elif kind == "error_occurred":
            error = str(data.get("error_type", "?"))
            seen = self.errors.get(error)
            if seen is None:
                self.errors[error] = [1, moment, str(data.get("error_message", ""))]
            else:
                seen[0] += 1
                if moment < seen[1]:
                    seen[1], seen[2] = moment, str(data.get("error_message", ""))
        elif kind == "token_usage":
            model_name = str(data.get("model", "?"))
            model = self.models.get(model_name)
            if model is None:
                model = self.models[model_name] = ModelTokens()
            tokens_in = _count(data.get("input_tokens")) or 0
            tokens_out = _count(data.get("output_tokens")) or 0
            model.calls += 1
            model.input_tokens += tokens_in
            model.output_tokens += tokens_out
            model.total_tokens += tokens_in + tokens_out
            if session_id is not None:
                tokens = self.session_tokens
                tokens[session_id] = tokens.get(session_id, 0) + tokens_in + tokens_out

    def merge(self, other: _Totals) -> None:
        """Add everything ``other`` counted (the files it read), as if read here."""
        self.count += other.count
        for moment in (other.first, other.last):
            if moment is not None:
                if self.first is None or moment < self.first:
                    self.first = moment
                if self.last is None or moment > self.last:
                    self.last = moment
        for mine, theirs in (
            (self.by_type, other.by_type),
            (self.hours, other.hours),
            (self.session_tokens, other.session_tokens),
        ):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        self.tools.merge(other.tools)
        for kind, runs in other.runs.items():
            self.runs[kind].merge(runs)
        self.checkpoints += other.checkpoints
        self.checkpoint_sessions |= other.checkpoint_sessions
        if not self.files_changed:
            self.files_changed = list(other.files_changed)
        elif other.files_changed:
            n, total, most = other.files_changed
            files = self.files_changed
            files[:] = files[0] + n, files[1] + total, max(files[2], most)
        self.sessions |= other.sessions
        for sid, moment in other.session_start.items():
            known = self.session_start.get(sid)
            if known is None or moment < known:
                self.session_start[sid] = moment
        for sid, moment in other.session_end.items():
            known = self.session_end.get(sid)
            if known is None or moment >= known:
                self.session_end[sid] = moment
        for sid, reported in other.session_reported.items():
            latest = self.session_reported.get(sid)
            if latest is None or reported[0] >= latest[0]:
                self.session_reported[sid] = reported
        for kind, (count, moment, example) in other.errors.items():
            seen = self.errors.get(kind)
            if seen is None:
                self.errors[kind] = [count, moment, example]
            else:
                seen[0] += count
                if moment < seen[1]:
                    seen[1], seen[2] = moment, example
        for model_name, model in other.models.items():
            mine_model = self.models.setdefault(model_name, ModelTokens())
            mine_model.calls += model.calls
            mine_model.input_tokens += model.input_tokens
            mine_model.output_tokens += model.output_tokens
            mine_model.total_tokens += model.total_tokens

    def add_entry(self, e: MetricEntry) -> None:
        moment = e.timestamp.astimezone(UTC)
        self.add(e.type.value, moment, hour_of(moment), e.session_id, e.data)

    def summary(self, bad_lines: int = 0) -> Summary:
        durations = Quantiles()
        for sid in self.sessions:
            if sid in self.session_reported:
                durations.add(self.session_reported[sid][1])
            elif sid in self.session_start and sid in self.session_end:
                elapsed = self.session_end[sid] - self.session_start[sid]
                durations.add(elapsed.total_seconds())
        figures, exact = self.tools.figures()
        exact = exact and durations.exact
        tools = {}
        for name, tool in figures.items():
            tools[name] = ToolStats(calls=tool.pop("count"), **tool)
        runs: dict[str, dict[str, RunStats]] = {}
        for kind, named in self.runs.items():
            figures, runs_exact = named.figures()
            exact = exact and runs_exact
            runs[kind] = {name: RunStats(**run) for name, run in figures.items()}
        n_files, files_total, files_max = self.files_changed or (0, 0, None)
        first, last = self.first, self.last
        bucket: Literal["hour", "day"] = "hour"
        if first is not None and last is not None and last - first > timedelta(days=3):
            bucket = "day"
        timeline: Counter[str] = Counter()
        for hour, n in self.hours.items():
            timeline[hour[:10] + "T00" if bucket == "day" else hour] += n
        tokens_total = sum(self.session_tokens.values())
        sessions = len(self.sessions)
        errors = sorted(self.errors.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        return Summary(
            first=first,
            last=last,
            entries=self.count,
            by_type=dict(sorted(self.by_type.items())),
            tools=tools,
            operations=runs["performance"],
            agents=runs["agent_execution"],
            commands=runs["command_executed"],
            hooks=runs["hook_triggered"],
            checkpoints=CheckpointStats(
                count=self.checkpoints,
                sessions=len(self.checkpoint_sessions),
                files_changed_total=files_total,
                files_changed_mean=files_total / n_files if n_files else None,
                files_changed_max=files_max,
            ),
            sessions=SessionStats(
                count=sessions,
                duration_s_p50=durations.quantile(0.5),
                duration_s_max=durations.maximum if durations.count else None,
                duration_s_mean=(
                    sum(durations.values) / durations.count if durations.values else None
                ),
                tokens_total=tokens_total,
                tokens_per_session_mean=tokens_total / sessions if sessions else None,
            ),
            errors={
                kind: ErrorStats(count=count, example=example)
                for kind, (count, _, example) in errors
            },
            tokens_by_model=dict(sorted(self.models.items())),
            bucket=bucket,
            timeline={f"{key}:00:00+00:00": n for key, n in sorted(timeline.items())},
            bad_lines=bad_lines,
            percentiles_exact=exact,
        )


def summarize_entries(entries: Iterable[MetricEntry], bad_lines: int = 0) -> Summary:
    """Summarize entries (in any order)."""
    totals = _Totals()
    for e in entries:
        totals.add_entry(e)
    return totals.summary(bad_lines)


PARALLEL_MIN_BYTES = 16 * 1024 * 1024
"""With ``workers=None``, below this many bytes of files one process reads them all:
starting worker processes costs more than it saves."""


def summarize(
    base_path: str | os.PathLike[str],
    *,
    stats: ReadStats | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = 1,
    **filters: Unpack[FilterKeywords],
) -> Summary:
    """Read every matching entry under ``base_path`` (streaming) and summarize it.

    A summary does not depend on the order of entries, so files are read one after
    another, without the merge :func:`iter_entries` does; memory holds one chunk of
    one file at a time, plus the summary's own tables. Percentiles are exact up to
    ``EXACT_LIMIT`` values per series and within 1% (relative) beyond.

    Args:
        base_path: the writer's base path (or its ``metrics`` directory).
        stats: filled in as reading goes (files, skipped files, entries, bad lines).
        progress: called with the number of entries read so far.
        workers: how many processes read files. ``1`` (the default) reads in this
            process. More starts that many worker processes (``spawn``: a script that
            calls this needs the ``if __name__ == "__main__":`` guard), each summing
            up whole files; the parts are merged here and give the same summary.
            ``None`` chooses: one per CPU when the files hold at least
            ``PARALLEL_MIN_BYTES``, else 1. ``python -m analytics report`` uses
            ``None``.
        **filters: ``since``, ``until``, ``types``, ``session_id``, ``user_id``,
            ``prefix`` (see :class:`~analytics._filter.FilterKeywords`).

    Raises:
        FileNotFoundError: the directory does not exist.
        ValueError: ``since`` or ``until`` is naive, or a type is unknown.
    """
    keep = Filter(**filters)
    stats = stats if stats is not None else ReadStats()
    directory = resolve_metrics_dir(base_path)
    paths = [path for _, path, _ in select_files(directory, keep, stats)]
    if workers is None:
        workers = _auto_workers(paths)
    totals = _Totals()
    if workers <= 1 or len(paths) <= 1:
        for path in paths:
            stats.files += 1
            for first_number, lines in line_batches(path):
                _add_lines(totals, keep, lines, path.name, first_number, stats)
                if progress is not None:
                    progress(totals.count)
    else:
        _summarize_in_processes(paths, keep, workers, totals, stats, progress)
    stats.entries = totals.count
    return totals.summary(stats.bad_lines)


def _auto_workers(paths: list[Path]) -> int:
    cpus = os.cpu_count() or 1
    if cpus <= 1:
        return 1
    size = 0
    for path in paths:
        with contextlib.suppress(OSError):
            size += path.stat().st_size
    return cpus if size >= PARALLEL_MIN_BYTES else 1


_PART_FILES = 4
"""Files per task handed to a worker process."""


def _summarize_in_processes(
    paths: list[Path],
    keep: Filter,
    workers: int,
    totals: _Totals,
    stats: ReadStats,
    progress: Callable[[int], None] | None,
) -> None:
    groups = [paths[i : i + _PART_FILES] for i in range(0, len(paths), _PART_FILES)]
    context = multiprocessing.get_context("spawn")  # fork is unsafe beside threads
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for part, part_stats, records in pool.map(_summarize_part, groups, repeat(keep)):
            totals.merge(part)
            stats.files += part_stats.files
            stats.bad_lines += part_stats.bad_lines
            for record in records:  # what the worker logged, logged here
                if logger.isEnabledFor(record.levelno):
                    logger.handle(record)
            if progress is not None:
                progress(totals.count)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None  # picklable as text
        record.exc_info = record.exc_text = None
        self.records.append(record)


def _summarize_part(
    paths: list[Path], keep: Filter
) -> tuple[_Totals, ReadStats, list[logging.LogRecord]]:
    """In a worker process: the totals of some whole files, with what was logged."""
    collect = _Collect()
    logger.addHandler(collect)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        totals, stats = _Totals(), ReadStats()
        for path in paths:
            stats.files += 1
            for first_number, lines in line_batches(path):
                _add_lines(totals, keep, lines, path.name, first_number, stats)
        return totals, stats, collect.records
    finally:
        logger.removeHandler(collect)


def _add_lines(
    totals: _Totals, keep: Filter, lines: list[bytes], name: str, first: int, stats: ReadStats
) -> None:
    """Parse and count a chunk's lines, accepting exactly what ``MetricEntry`` accepts,
    without building one for lines as this library writes them. This loop is the
    Python engine's speed: keep it flat."""
    add = totals.add
    filtering = keep.active
    for offset, line in enumerate(lines):
        if not line:
            continue
        try:
            kind, moment, hour, _, sid, uid, data, _ = fields_from_line(line)
        except ValueError:  # pydantic's ValidationError included
            stats.bad_lines += 1
            logger.warning("%s:%d: skipped a line that is not a valid entry", name, first + offset)
            continue
        if filtering and not keep.matches(kind, moment, sid, uid):
            continue
        add(kind, moment, hour, sid, data)
