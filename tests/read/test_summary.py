"""summarize(): what the summary counts, whatever the files and their order, in one
process or several."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import (
    MetricEntry,
    MetricType,
    ReadStats,
    iter_entries,
    summarize,
)
from analytics._read.summary import summarize_entries

from ..helpers import T0, at, foreign_entry, line_of, write_file, write_lines_file

_kinds = st.sampled_from(
    [
        (MetricType.TOOL_USE, {"tool_name": "grep", "success": False, "duration_ms": 3.5}),
        (MetricType.TOOL_USE, {"tool_name": "edit", "success": True, "duration_ms": 7}),
        (MetricType.SESSION_START, {}),
        (MetricType.SESSION_END, {}),
        (MetricType.SESSION_END, {"duration_seconds": 12.5}),
        (MetricType.ERROR_OCCURRED, {"error_type": "Timeout", "error_message": "m"}),
        (MetricType.ERROR_OCCURRED, {"error_type": "KeyError", "error_message": "k"}),
        (MetricType.TOKEN_USAGE, {"model": "m1", "input_tokens": 5, "output_tokens": 2}),
    ]
)


class TestSummarize:
    def test_counts_tools_sessions_errors_and_tokens(self, tmp_path: Path) -> None:
        entries = [
            at(0, MetricType.SESSION_START, session_id="s1"),
            *[
                at(
                    1 + i,
                    session_id="s1",
                    data={"tool_name": "grep", "success": i != 3, "duration_ms": float(i + 1)},
                )
                for i in range(10)
            ],
            at(
                20,
                MetricType.TOKEN_USAGE,
                session_id="s1",
                data={"model": "m", "input_tokens": 100, "output_tokens": 20},
            ),
            at(
                21,
                MetricType.ERROR_OCCURRED,
                session_id="s1",
                data={"error_type": "Timeout", "error_message": "slow"},
            ),
            at(22, MetricType.ERROR_OCCURRED, data={"error_type": "Timeout", "error_message": "x"}),
            at(30, MetricType.SESSION_END, session_id="s1", data={"duration_seconds": 30.0}),
        ]
        write_file(tmp_path / "metrics", T0, 1, entries, tail=b"garbage\n")
        s = summarize(tmp_path)
        assert s.entries == 15
        assert s.first == T0
        assert s.last == T0 + timedelta(seconds=30)
        assert s.by_type == {
            "error_occurred": 2,
            "session_end": 1,
            "session_start": 1,
            "token_usage": 1,
            "tool_use": 10,
        }
        grep = s.tools["grep"]
        assert (grep.calls, grep.failures, grep.success_rate) == (10, 1, 0.9)
        assert (grep.duration_ms_p50, grep.duration_ms_p95, grep.duration_ms_max) == (5, 10, 10)
        assert s.sessions.count == 1
        assert s.sessions.duration_s_p50 == 30.0
        assert s.sessions.tokens_total == 120
        assert s.errors["Timeout"].count == 2
        assert s.errors["Timeout"].example == "slow"
        assert s.tokens_by_model["m"].total_tokens == 120
        assert s.bucket == "hour"
        assert s.timeline == {"2026-11-01T12:00:00+00:00": 15}
        assert s.bad_lines == 1
        assert s.percentiles_exact

    def test_session_duration_falls_back_to_start_and_end_times(self) -> None:
        s = summarize_entries(
            [
                at(0, MetricType.SESSION_START, session_id="x"),
                at(42, MetricType.SESSION_END, session_id="x"),
            ]
        )
        assert s.sessions.duration_s_p50 == 42.0

    def test_a_long_span_is_bucketed_by_day(self) -> None:
        s = summarize_entries([at(0), at(5 * 86400)])
        assert s.bucket == "day"
        assert list(s.timeline) == ["2026-11-01T00:00:00+00:00", "2026-11-06T00:00:00+00:00"]


def test_python_engine_streams_fast_enough_to_measure(tmp_path: Path) -> None:
    """Not a speed assertion: the figure is published from benchmarks/read_bench.py."""
    entries = [at(i * 0.001, data={"tool_name": "t", "success": True}) for i in range(2000)]
    write_file(tmp_path / "metrics", T0, os.getpid(), entries, compressed=True)
    assert sum(1 for _ in iter_entries(tmp_path)) == 2000


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 20_000), _kinds, st.sampled_from(["s1", "s2", None])),
        min_size=1,
        max_size=60,
        unique_by=lambda event: event[0],
    ),
    files=st.integers(1, 4),
    order=st.randoms(use_true_random=False),
)
def test_a_summary_does_not_depend_on_files_or_order(
    tmp_path_factory: pytest.TempPathFactory,
    events: list[tuple[int, tuple[MetricType, dict[str, Any]], str | None]],
    files: int,
    order: Any,
) -> None:
    """summarize() reads files one by one, unmerged: the earliest error message, the
    first start and last end of a session must still win, whatever the layout."""
    entries = [
        at(second, kind, session_id=sid, data={**data, "error_message": f"at {second}"})
        if kind is MetricType.ERROR_OCCURRED
        else at(second, kind, session_id=sid, data=data)
        for second, (kind, data), sid in events
    ]
    shuffled = list(entries)
    order.shuffle(shuffled)
    base = tmp_path_factory.mktemp("layout")
    for n in range(files):
        write_file(base / "metrics", T0, 100 + n, shuffled[n::files], compressed=n % 2 == 1)
    chronological = summarize_entries(sorted(entries, key=lambda e: e.timestamp))
    got = summarize(base)
    assert got.model_dump(exclude={"sessions"}) == chronological.model_dump(exclude={"sessions"})
    assert got.sessions.model_dump(exclude={"duration_s_mean"}) == (
        chronological.sessions.model_dump(exclude={"duration_s_mean"})
    )
    assert got.sessions.duration_s_mean == pytest.approx(chronological.sessions.duration_s_mean)
    for kind, error in got.errors.items():
        earliest = min(
            (e for e in entries if e.data.get("error_type") == kind), key=lambda e: e.timestamp
        )
        assert error.example == earliest.data["error_message"]


def test_summarize_reports_progress_and_fills_stats(
    tmp_path: Path, two_processes: list[MetricEntry]
) -> None:
    seen: list[int] = []
    stats = ReadStats()
    summary = summarize(tmp_path, stats=stats, progress=seen.append)
    assert seen == sorted(seen)
    assert seen[-1] == summary.entries == stats.entries == len(two_processes)
    assert stats.files == 4  # notes.txt is not ours
    assert stats.bad_lines == summary.bad_lines == 2


class TestWorkerProcesses:
    def test_several_processes_give_the_same_summary_and_log_bad_lines_here(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        metrics_dir = tmp_path / "metrics"
        kinds: list[tuple[MetricType, dict[str, Any]]] = [
            (MetricType.TOOL_USE, {"tool_name": "grep", "success": False, "duration_ms": 3.5}),
            (MetricType.SESSION_START, {}),
            (MetricType.SESSION_END, {"duration_seconds": 4.0}),
            (MetricType.ERROR_OCCURRED, {"error_type": "Timeout", "error_message": "x"}),
            (MetricType.TOKEN_USAGE, {"model": "m", "input_tokens": 3, "output_tokens": 4}),
        ]
        for n in range(9):  # more files than one task takes
            entries = [
                at(
                    n * 100 + i,
                    kinds[i % len(kinds)][0],
                    session_id=f"s{i % 3}",
                    data={
                        **kinds[i % len(kinds)][1],
                        "error_message": f"m{n}.{i}",
                        **({"duration_seconds": float(n * 10 + i)} if i % 10 == 2 else {}),
                    },
                )
                for i in range(40)
            ]
            write_file(
                metrics_dir,
                T0 + timedelta(seconds=n * 100),
                200 + n % 3,
                entries,
                compressed=n % 2 == 0,
                tag=f"abcdef{n:02d}",
                tail=b"not json\n" if n == 4 else b"",
            )
        one = summarize(tmp_path)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="analytics"):
            stats = ReadStats()
            several = summarize(tmp_path, workers=2, stats=stats)
        assert several == one
        assert several.entries == 360
        assert stats.files == 9
        assert stats.bad_lines == several.bad_lines == 1
        messages = [r.getMessage() for r in caplog.records if r.name == "analytics"]
        assert any(":41: skipped a line" in m for m in messages), messages

    def test_workers_none_uses_processes_only_for_large_directories(self, tmp_path: Path) -> None:
        from analytics._read import summary as _summary

        small = tmp_path / "small.jsonl"
        small.write_bytes(b"x" * 1000)
        assert _summary._auto_workers([small]) == 1
        if (os.cpu_count() or 1) > 1:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(_summary, "PARALLEL_MIN_BYTES", 500)
                assert _summary._auto_workers([small]) == os.cpu_count()


@given(
    events=st.lists(
        st.tuples(st.integers(0, 20_000), _kinds, st.sampled_from(["s1", "s2", None])),
        max_size=40,
        unique_by=lambda event: event[0],
    ),
    cut=st.integers(0, 40),
)
def test_merged_totals_are_the_totals_of_everything_in_either_order(
    events: list[tuple[int, tuple[MetricType, dict[str, Any]], str | None]], cut: int
) -> None:
    from analytics._read.summary import _Totals

    entries = [
        at(second, kind, session_id=sid, data={**data, "error_message": f"at {second}"})
        for second, (kind, data), sid in events
    ]
    expected = summarize_entries(entries)
    for first, second in ((entries[:cut], entries[cut:]), (entries[cut:], entries[:cut])):
        left, right = _Totals(), _Totals()
        for e in first:
            left.add_entry(e)
        for e in second:
            right.add_entry(e)
        left.merge(right)
        got = left.summary()
        assert got.model_dump(exclude={"sessions"}) == expected.model_dump(exclude={"sessions"})
        assert got.sessions.model_dump(exclude={"duration_s_mean"}) == (
            expected.sessions.model_dump(exclude={"duration_s_mean"})
        )


class TestFastParser:
    """With orjson installed, lines are parsed by it where its answer is the exact
    parser's; where it is not, the exact parser decides."""

    def _lines(self) -> list[bytes]:
        big = 123456789012345678901234567890  # beyond 64 bits: orjson makes a float of it
        deep: object = "leaf"
        for _ in range(250):  # deeper than pydantic-core parses: not an entry
            deep = [deep]
        lines = [
            line_of(foreign_entry(type=kind, timestamp=T0, id=f"i{n}", data=data))
            for n, (kind, data) in enumerate(
                [
                    (MetricType.ERROR_OCCURRED, {"error_type": big, "error_message": [big]}),
                    (MetricType.TOKEN_USAGE, {"model": {"v": -big}, "input_tokens": big}),
                    (MetricType.TOOL_USE, {"tool_name": "grep", "duration_ms": 2**70}),
                    (MetricType.TOOL_USE, {"tool_name": "grep", "duration_ms": 3}),
                ]
            )
        ]
        entry = json.loads(line_of(at(1, data={"tool_name": "edit"})))
        entry["data"]["x"] = deep
        return [*lines, json.dumps(entry).encode() + b"\n"]

    def test_the_same_summary_with_or_without_it(self, tmp_path: Path) -> None:
        from analytics._read import summary as _summary

        if _summary._fast_loads is None:
            pytest.skip("orjson is not installed")
        write_lines_file(tmp_path / "metrics", self._lines(), created=T0, pid=1, tag="abcdef01")
        fast = summarize(tmp_path)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_summary, "_fast_loads", None)
            exact = summarize(tmp_path)
        assert fast == exact
        assert exact.bad_lines == 1  # the deep one
        assert set(exact.errors) == {"123456789012345678901234567890"}
        assert exact.errors["123456789012345678901234567890"].example == (
            "[123456789012345678901234567890]"
        )
        assert set(exact.tokens_by_model) == {'{"v":-123456789012345678901234567890}'}
        assert exact.tools["grep"].duration_ms_max == float(2**70)


def test_worker_processes_report_progress_up_to_the_total(tmp_path: Path) -> None:
    for n in range(6):
        entries = [at(n * 100 + i, data={"tool_name": "t", "success": True}) for i in range(50)]
        write_file(tmp_path / "metrics", T0 + timedelta(seconds=n * 100), 300 + n, entries)
    seen: list[int] = []
    stats = ReadStats()
    summary = summarize(tmp_path, workers=2, stats=stats, progress=seen.append)
    assert summary.entries == stats.entries == 300
    assert stats.files == 6
    assert seen == sorted(seen)
    assert seen[-1] == 300
