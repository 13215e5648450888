"""Summaries of what the files hold: counts, tool and operation latency, agents,
commands, hooks, checkpoints, sessions, errors, tokens.

What is counted is defined once, in ``analytics._read.figures`` (``FIGURES``); this module
holds the ``Summary`` models, :func:`build_summary` (figures to a ``Summary``, for every
engine) and the Python engine's reading loop (:func:`summarize`, in one process or
several)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, Literal, NamedTuple, Unpack

from pydantic import BaseModel, Field

from .._models import MetricEntry, MetricType
from .figures import SERIES, Results, Spread, series_width, text_keys
from .files import ReadStats, line_batches, resolve_metrics_dir, select_files
from .filter import Filter, FilterKeywords
from .quantiles import Quantiles
from .rows import fields_from_line, hour_of, plain_fields
from .totals import Totals

__all__ = [
    "CheckpointStats",
    "Quantiles",
    "RunStats",
    "Summary",
    "build_summary",
    "summarize",
    "summarize_entries",
]

logger = logging.getLogger("analytics")


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
    series_bucket_seconds: int = 0
    """The width of the buckets of :attr:`series`, :attr:`errors_series` and
    :attr:`tokens_series` in seconds, chosen from the span (``first`` to ``last``): the
    smallest of 1 s, 10 s, 1 min, 10 min, 1 h, 6 h, 1 day, 7, 28, 364 days giving at
    most 180 buckets (0 when there are no entries)."""
    series: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Entries per bucket (keyed by its start, ISO-8601, UTC) and type; empty buckets
    left out."""
    errors_series: dict[str, dict[str, int]] = Field(default_factory=dict)
    """``error_occurred`` entries per bucket and ``error_type``."""
    tokens_series: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Tokens (input and output) per bucket and ``model``."""
    bad_lines: int = 0
    percentiles_exact: bool = True
    """False when some series was beyond ``EXACT_LIMIT`` values (1% relative error)."""


class _Totals(Totals):
    """The Python engine's :class:`~analytics._read.figures.Totals` of ``FIGURES``, fed
    with whole entries too, and read as a :class:`Summary`."""

    @property
    def count(self) -> int:
        """Entries added."""
        count: int = self.value("entries", "count")
        return count

    def add_entry(self, e: MetricEntry) -> None:
        moment = e.timestamp.astimezone(UTC)
        self.add(e.type.value, moment, hour_of(moment), e.session_id, e.data)

    def summary(self, bad_lines: int = 0) -> Summary:
        return build_summary(self.results(), bad_lines)


def build_summary(results: Results, bad_lines: int = 0, exact_limit: int | None = None) -> Summary:
    """The :class:`Summary` of the figures an engine computed (see
    ``analytics._read.figures.FIGURES``), whichever engine it was.

    Session durations are derived here, from each session's start, end and reported
    duration: their percentiles are exact up to ``exact_limit`` sessions (by default,
    as the Python engine's other percentiles).
    """
    exact = True

    def runs(name: str) -> dict[str, dict[str, Any]]:
        nonlocal exact
        figures = {}
        for key in sorted(results[name]):  # type: ignore[type-var]
            row = results[name][key]
            spread: Spread = row["duration_ms"]
            exact = exact and spread.exact
            count, failures = row["count"], row["failures"]
            p50, p95, p99 = spread.percentiles
            figures[str(key)] = {
                "count": count,
                "failures": failures,
                "success_rate": (count - failures) / count,
                "duration_ms_p50": p50,
                "duration_ms_p95": p95,
                "duration_ms_p99": p99,
                "duration_ms_max": spread.maximum,
            }
        return figures

    tools = {name: ToolStats(calls=run.pop("count"), **run) for name, run in runs("tools").items()}
    operations, agents, commands, hooks = (
        {name: RunStats(**run) for name, run in runs(section).items()}
        for section in ("operations", "agents", "commands", "hooks")
    )

    durations = Quantiles() if exact_limit is None else Quantiles(exact_limit)
    total = 0.0
    starts = results["session_starts"]
    for sid, end in results["session_ends"].items():
        duration = end["reported"]
        if duration is None:
            start = starts.get(sid)
            if start is None:
                continue
            duration = (end["at"] - start["at"]).total_seconds()
        durations.add(duration)
        total += duration
    exact = exact and durations.exact
    entries = results["entries"][None]
    sessions: int = entries["sessions"]
    tokens_total = sum(
        row["input_tokens"] + row["output_tokens"] for row in results["session_tokens"].values()
    )

    first, last = entries["first"], entries["last"]
    bucket: Literal["hour", "day"] = "hour"
    if first is not None and last is not None and last - first > timedelta(days=3):
        bucket = "day"
    timeline: Counter[str] = Counter()
    for hour, row in results["timeline"].items():
        hour = str(hour)
        timeline[hour[:10] + "T00" if bucket == "day" else hour] += row["count"]

    checkpoints = results["checkpoints"][None]
    n_files, files_total = checkpoints["files_changed_n"], checkpoints["files_changed_total"]
    errors = sorted(
        results["errors"].items(), key=lambda kv: (-kv[1]["count"], kv[1]["first"], kv[0])
    )
    models = results["tokens_by_model"]
    width = series_width(results)
    series = {one.name: _series(results.get(one.name, {}), width) for one in SERIES}
    return Summary(
        first=first,
        last=last,
        entries=entries["count"],
        by_type={str(kind): row["count"] for kind, row in sorted(results["by_type"].items())},
        tools=tools,
        operations=operations,
        agents=agents,
        commands=commands,
        hooks=hooks,
        checkpoints=CheckpointStats(
            count=checkpoints["count"],
            sessions=checkpoints["sessions"],
            files_changed_total=files_total,
            files_changed_mean=files_total / n_files if n_files else None,
            files_changed_max=checkpoints["files_changed_max"],
        ),
        sessions=SessionStats(
            count=sessions,
            duration_s_p50=durations.quantile(0.5),
            duration_s_max=durations.maximum if durations.count else None,
            duration_s_mean=total / durations.count if durations.count else None,
            tokens_total=tokens_total,
            tokens_per_session_mean=tokens_total / sessions if sessions else None,
        ),
        errors={
            str(kind): ErrorStats(count=row["count"], example=row["example"])
            for kind, row in errors
        },
        tokens_by_model={
            str(model): ModelTokens(
                calls=row["calls"],
                input_tokens=row["input_tokens"],
                output_tokens=row["output_tokens"],
                total_tokens=row["input_tokens"] + row["output_tokens"],
            )
            for model, row in sorted(models.items())
        },
        bucket=bucket,
        timeline={f"{key}:00:00+00:00": n for key, n in sorted(timeline.items())},
        series_bucket_seconds=width if entries["count"] else 0,
        series=series["series"],
        errors_series=series["errors_series"],
        tokens_series=series["tokens_series"],
        bad_lines=max(bad_lines, 0),
        percentiles_exact=exact,
    )


def _series(rows: dict[Any, dict[str, Any]], width: int) -> dict[str, dict[str, int]]:
    """A series' rows (per bucket start in epoch seconds and key, maybe at finer
    buckets) at buckets of ``width`` seconds, keyed by ISO start, then by key."""
    merged: Counter[tuple[int, str]] = Counter()
    for (bucket, key), row in rows.items():
        merged[bucket - bucket % width, str(key)] += row["amount"]
    series: dict[str, dict[str, int]] = {}
    for (bucket, key), amount in sorted(merged.items()):
        start = (_EPOCH + timedelta(seconds=bucket)).isoformat()
        series.setdefault(start, {})[key] = amount
    return series


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
            process. More reads in this process and ``workers - 1`` started ones
            (``spawn``: a script that calls this needs the
            ``if __name__ == "__main__":`` guard), each taking the next unread file
            until none is left; their totals are merged here and give the same
            summary.
            ``None`` chooses: one per CPU when the files hold at least
            ``PARALLEL_MIN_BYTES``, else 1. ``python -m analytics report`` uses
            ``None``.
        **filters: ``since``, ``until``, ``types``, ``session_id``, ``user_id``,
            ``prefix`` (see :class:`~analytics._read.filter.FilterKeywords`).

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


def _summarize_in_processes(
    paths: list[Path],
    keep: Filter,
    workers: int,
    totals: _Totals,
    stats: ReadStats,
    progress: Callable[[int], None] | None,
) -> None:
    """Read ``paths`` in ``workers`` processes: this one and ``workers - 1`` started
    ones. Each takes the next unread file from a shared counter until none is left
    (so a slow process reads fewer files), adding into totals of its own; the started
    ones send theirs back once, at the end, to be merged here.

    This process reads too, from the start: it does not wait idle while the others
    start up, and one process fewer is started."""
    context = multiprocessing.get_context("spawn")  # fork is unsafe beside threads
    shared = _Shared(context.Value("q", 0), context.Value("q", 0))
    helpers = min(workers, len(paths)) - 1
    with ProcessPoolExecutor(
        helpers, mp_context=context, initializer=_share, initargs=(shared,)
    ) as pool:
        parts = [pool.submit(_summarize_share, paths, keep) for _ in range(helpers)]

        def report() -> None:
            if progress is not None:
                progress(shared.entries.value)

        try:
            _read_share(paths, keep, totals, stats, shared, report)
        except BaseException:
            with shared.next_file.get_lock():  # the others stop after their file
                shared.next_file.value = len(paths)
            raise
        for future in parts:
            part, part_stats, records = future.result()
            totals.merge(part)
            stats.files += part_stats.files
            stats.bad_lines += part_stats.bad_lines
            for record in records:  # what the worker logged, logged here
                if logger.isEnabledFor(record.levelno):
                    logger.handle(record)
            report()


class _Shared(NamedTuple):
    """What the processes reading one directory share."""

    next_file: Synchronized[int]
    """The index of the next file to read."""
    entries: Synchronized[int]
    """Entries counted so far, by every process (for ``progress``)."""


_shared: _Shared | None = None
"""In a worker process: what it shares with the others (set by :func:`_share`)."""


def _share(shared: _Shared) -> None:
    global _shared
    _shared = shared


def _read_share(
    paths: list[Path],
    keep: Filter,
    totals: _Totals,
    stats: ReadStats,
    shared: _Shared,
    report: Callable[[], None],
) -> None:
    """Read the next unread file of ``paths`` until none is left."""
    while True:
        with shared.next_file.get_lock():
            index = shared.next_file.value
            shared.next_file.value = index + 1
        if index >= len(paths):
            return
        path = paths[index]
        before = totals.count
        stats.files += 1
        for first_number, lines in line_batches(path):
            _add_lines(totals, keep, lines, path.name, first_number, stats)
        with shared.entries.get_lock():
            shared.entries.value += totals.count - before
        report()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None  # picklable as text
        record.exc_info = record.exc_text = None
        self.records.append(record)


def _summarize_share(
    paths: list[Path], keep: Filter
) -> tuple[_Totals, ReadStats, list[logging.LogRecord]]:
    """In a worker process: the totals of the files it took, with what was logged."""
    assert _shared is not None, "started without _share"
    collect = _Collect()
    logger.addHandler(collect)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        totals, stats = _Totals(), ReadStats()
        _read_share(paths, keep, totals, stats, _shared, lambda: None)
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
    loads = _fast_loads
    names = _NAMES
    for offset, line in enumerate(lines):
        if not line:
            continue
        fields = None
        if loads is not None and (
            len(line) <= _SHALLOW or line.count(b"[") + line.count(b"{") <= _SHALLOW // 2
        ):
            try:
                fields = plain_fields(loads(line))
            except ValueError:
                pass  # decided below
            if fields is not None:
                data = fields[6]
                for key in names[fields[0]]:
                    value = data.get(key)
                    if value is not None and type(value) is not str:
                        fields = None  # a name that may hold an integer orjson made a float
                        break
        if fields is None:
            try:
                fields = fields_from_line(line)
            except ValueError:  # pydantic's ValidationError included
                stats.bad_lines += 1
                logger.warning(
                    "%s:%d: skipped a line that is not a valid entry", name, first + offset
                )
                continue
        kind, moment, hour, _, sid, uid, data, _ = fields
        if filtering and not keep.matches(kind, moment, sid, uid):
            continue
        add(kind, moment, hour, sid, data)


_fast_loads: Callable[[bytes], Any] | None
try:
    _fast_loads = importlib.import_module("orjson").loads
except ModuleNotFoundError:  # optional: the same summary, a little slower
    _fast_loads = None
"""orjson's parser when it is installed, for lines whose answer it gives exactly as
``fields_from_line`` would. It differs in two ways, both sent to the exact path:
it parses deeper nesting than pydantic-core (which stops past 201 levels: a line of
at most ``_SHALLOW`` bytes, or with at most half as many brackets, cannot be that
deep), and it makes a float of an integer beyond 64 bits, which changes only a name
given as a non-string (its JSON text); numbers and counts come out the same."""

_SHALLOW = 400

_NAMES: dict[str, tuple[str, ...]] = {
    kind.value: tuple(sorted(keys))
    for kind, keys in ((t, text_keys().get(t.value, frozenset())) for t in MetricType)
}
"""Per entry kind, the keys of ``data`` its figures read as names."""
