"""Summaries of what the files hold: counts, tool latency, sessions, errors, tokens."""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from ._models import MetricEntry, MetricType
from ._reader import ReadStats, Row, _iter, _row

__all__ = ["Quantiles", "Summary", "summarize", "summarize_entries"]

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
        self.maximum = max(self.maximum, value)
        if self.values is not None:
            self.values.append(value)
            if len(self.values) > self.exact_limit:
                for v in self.values:
                    self._bucket(v)
                self.values = None
        else:
            self._bucket(value)

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
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def summarize_entries(entries: Iterable[MetricEntry | Row], bad_lines: int = 0) -> Summary:
    """Summarize entries (in any order)."""
    by_type: Counter[MetricType] = Counter()
    tool_calls: Counter[str] = Counter()
    tool_failures: Counter[str] = Counter()
    tool_durations: dict[str, Quantiles] = defaultdict(Quantiles)
    session_start: dict[str, datetime] = {}
    session_end: dict[str, datetime] = {}
    session_reported: dict[str, float] = {}
    session_tokens: Counter[str] = Counter()
    sessions: set[str] = set()
    errors: dict[str, ErrorStats] = {}
    models: dict[str, ModelTokens] = {}
    hours: Counter[int] = Counter()  # hours since the epoch
    first: datetime | None = None
    last: datetime | None = None
    count = 0
    for e in entries:
        count += 1
        first = e.timestamp if first is None or e.timestamp < first else first
        last = e.timestamp if last is None or e.timestamp > last else last
        by_type[e.type] += 1
        hours[int(e.timestamp.timestamp()) // 3600] += 1
        data = e.data
        if e.session_id is not None:
            sessions.add(e.session_id)
        if e.type is MetricType.TOOL_USE:
            name = str(data.get("tool_name", "?"))
            tool_calls[name] += 1
            if data.get("success") is False:
                tool_failures[name] += 1
            duration = _number(data.get("duration_ms"))
            if duration is not None:
                tool_durations[name].add(duration)
        elif e.type is MetricType.SESSION_START and e.session_id is not None:
            session_start.setdefault(e.session_id, e.timestamp)
        elif e.type is MetricType.SESSION_END and e.session_id is not None:
            session_end[e.session_id] = e.timestamp
            reported = _number(data.get("duration_seconds"))
            if reported is not None:
                session_reported[e.session_id] = reported
        elif e.type is MetricType.ERROR_OCCURRED:
            kind = str(data.get("error_type", "?"))
            stats = errors.setdefault(kind, ErrorStats(example=str(data.get("error_message", ""))))
            stats.count += 1
        elif e.type is MetricType.TOKEN_USAGE:
            model = models.setdefault(str(data.get("model", "?")), ModelTokens())
            tokens_in = int(_number(data.get("input_tokens")) or 0)
            tokens_out = int(_number(data.get("output_tokens")) or 0)
            model.calls += 1
            model.input_tokens += tokens_in
            model.output_tokens += tokens_out
            model.total_tokens += tokens_in + tokens_out
            if e.session_id is not None:
                session_tokens[e.session_id] += tokens_in + tokens_out

    durations = Quantiles()
    for sid in sessions:
        if sid in session_reported:
            durations.add(session_reported[sid])
        elif sid in session_start and sid in session_end:
            durations.add((session_end[sid] - session_start[sid]).total_seconds())
    tools = {}
    exact = durations.exact
    for name in sorted(tool_calls):
        q = tool_durations.get(name, Quantiles())
        exact = exact and q.exact
        calls = tool_calls[name]
        tools[name] = ToolStats(
            calls=calls,
            failures=tool_failures[name],
            success_rate=(calls - tool_failures[name]) / calls,
            duration_ms_p50=q.quantile(0.50),
            duration_ms_p95=q.quantile(0.95),
            duration_ms_p99=q.quantile(0.99),
            duration_ms_max=q.maximum if q.count else None,
        )
    bucket: Literal["hour", "day"] = "hour"
    if first is not None and last is not None and last - first > timedelta(days=3):
        bucket = "day"
    timeline: Counter[datetime] = Counter()
    for hour, n in hours.items():
        start = datetime.fromtimestamp(hour * 3600, tz=timezone.utc)
        timeline[start.replace(hour=0) if bucket == "day" else start] += n
    tokens_total = sum(session_tokens.values())
    return Summary(
        first=first,
        last=last,
        entries=count,
        by_type=dict(sorted((kind.value, n) for kind, n in by_type.items())),
        tools=tools,
        sessions=SessionStats(
            count=len(sessions),
            duration_s_p50=durations.quantile(0.5),
            duration_s_max=durations.maximum if durations.count else None,
            duration_s_mean=(sum(durations.values) / durations.count if durations.values else None),
            tokens_total=tokens_total,
            tokens_per_session_mean=tokens_total / len(sessions) if sessions else None,
        ),
        errors=dict(sorted(errors.items(), key=lambda kv: -kv[1].count)),
        tokens_by_model=dict(sorted(models.items())),
        bucket=bucket,
        timeline={k.astimezone(timezone.utc).isoformat(): v for k, v in sorted(timeline.items())},
        bad_lines=bad_lines,
        percentiles_exact=exact,
    )


def summarize(
    base_path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    types: Iterable[MetricType | str] | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    prefix: str = "metrics",
) -> Summary:
    """Read every matching entry under ``base_path`` (streaming) and summarize it.

    Percentiles are exact up to ``EXACT_LIMIT`` values per series and within 1%
    (relative) beyond.

    Raises:
        FileNotFoundError: the directory does not exist.
    """
    stats = ReadStats()
    # Rows, not MetricEntry objects: the same lines are accepted and rejected, at a
    # fraction of the cost (a summary needs five fields of each entry).
    rows = _iter(
        base_path,
        _row,
        since=since,
        until=until,
        types=types,
        session_id=session_id,
        user_id=user_id,
        prefix=prefix,
        stats=stats,
    )
    summary = summarize_entries(rows)
    summary.bad_lines = stats.bad_lines
    return summary
