"""The summary covers every entry type: operations, agents, commands, hooks and
checkpoints, in both engines and across worker processes (rendered: test_report.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from analytics import MetricEntry, MetricType, Summary, summarize
from analytics._read.summary import CheckpointStats, RunStats, summarize_entries
from analytics._report import FORMATS, render

from ..helpers import T0, foreign_at, line_of, write_lines_file


def write_files(base: Path, entries: list[MetricEntry], files: int = 2, raw: bytes = b"") -> None:
    """``entries`` spread over ``files`` files (every other one gzipped), as a writer
    names them; ``raw`` lines appended to the first."""
    for n in range(files):
        write_lines_file(
            base / "metrics",
            [line_of(e) for e in entries[n::files]],
            created=T0 + timedelta(microseconds=n),
            pid=100 + n,
            tag=f"abcdef{n:02d}",
            compressed=bool(n % 2),
            tail=raw if n == 0 else b"",
        )


class TestFigures:
    def test_operations_are_keyed_by_operation_with_percentiles(self, every_kind: Summary) -> None:
        assert every_kind.operations == {
            "db.query": RunStats(
                count=1,
                failures=0,
                success_rate=1.0,
                duration_ms_p50=12.0,
                duration_ms_p95=12.0,
                duration_ms_p99=12.0,
                duration_ms_max=12.0,
            ),
            "http.request": RunStats(
                count=4,
                failures=1,
                success_rate=0.75,
                duration_ms_p50=0.42,
                duration_ms_p95=0.5,
                duration_ms_p99=0.5,
                duration_ms_max=0.5,
            ),
        }

    def test_agents_commands_and_hooks(self, every_kind: Summary) -> None:
        planner, coder = every_kind.agents["planner"], every_kind.agents["coder"]
        assert (planner.count, planner.failures, planner.duration_ms_p50) == (2, 1, 40.0)
        assert planner.duration_ms_max == 60.0
        assert (coder.count, coder.failures, coder.duration_ms_p50) == (1, 0, None)
        pytest_q = every_kind.commands["pytest -q"]
        assert (pytest_q.count, pytest_q.failures, pytest_q.success_rate) == (2, 1, 0.5)
        assert (pytest_q.duration_ms_p50, pytest_q.duration_ms_max) == (900.0, 1100.0)
        assert every_kind.commands["make"].failures == 1
        hook = every_kind.hooks["pre-commit"]
        assert (hook.count, hook.failures, hook.duration_ms_p50) == (2, 0, 3.0)

    def test_checkpoints(self, every_kind: Summary) -> None:
        assert every_kind.checkpoints == CheckpointStats(
            count=3, sessions=2, files_changed_total=10, files_changed_mean=5.0, files_changed_max=7
        )

    def test_a_command_with_only_a_non_zero_exit_code_failed(self) -> None:
        summary = summarize_entries(
            [
                foreign_at(0, MetricType.COMMAND_EXECUTED, {"command": "ls", "exit_code": 2}),
                foreign_at(1, MetricType.COMMAND_EXECUTED, {"command": "ls", "exit_code": 0}),
                foreign_at(2, MetricType.COMMAND_EXECUTED, {"command": "ls"}),
                # success, when given, is what counts
                foreign_at(
                    3,
                    MetricType.COMMAND_EXECUTED,
                    {"command": "ls", "exit_code": 1, "success": True},
                ),
            ]
        )
        assert (summary.commands["ls"].count, summary.commands["ls"].failures) == (4, 1)

    def test_a_missing_name_is_a_question_mark_and_others_their_json(self) -> None:
        summary = summarize_entries(
            [
                foreign_at(0, MetricType.PERFORMANCE, {"duration_ms": 1.0}),
                foreign_at(1, MetricType.PERFORMANCE, {"operation": None}),
                foreign_at(2, MetricType.HOOK_TRIGGERED, {"hook_name": 5}),
                foreign_at(3, MetricType.TOOL_USE, {"tool_name": True}),
            ]
        )
        assert list(summary.operations) == ["?"]
        assert summary.operations["?"].count == 2
        assert list(summary.hooks) == ["5"]
        assert list(summary.tools) == ["true"]

    def test_absent_kinds_are_empty(self) -> None:
        summary = summarize_entries([foreign_at(0, MetricType.TOOL_USE, {"tool_name": "grep"})])
        assert summary.operations == summary.agents == summary.commands == summary.hooks == {}
        assert summary.checkpoints == CheckpointStats()

    def test_an_old_summary_json_still_loads(self) -> None:
        """A report saved before these sections existed reads back, with them empty."""
        old = json.loads(Summary(entries=3).model_dump_json())
        for field in ("operations", "agents", "commands", "hooks", "checkpoints"):
            del old[field]
        loaded = Summary.model_validate(old)
        assert loaded.entries == 3
        assert loaded.operations == {}
        assert loaded.checkpoints.count == 0


# Every value no float holds, and counts no 64-bit integer holds, in every field the
# summary reads a number from.
_HUGE = 10**400
_TOO_MANY = 2**70


def huge_entries() -> list[MetricEntry]:
    entries = []
    for n, ms in enumerate([_HUGE, 2.0, -_HUGE, 4.0]):
        entries += [
            foreign_at(
                n, MetricType.TOOL_USE, {"tool_name": "grep", "success": True, "duration_ms": ms}
            ),
            foreign_at(
                n, MetricType.PERFORMANCE, {"operation": "op", "success": True, "duration_ms": ms}
            ),
            foreign_at(
                n,
                MetricType.AGENT_EXECUTION,
                {"agent_name": "a", "success": True, "duration_ms": ms},
            ),
            foreign_at(
                n,
                MetricType.COMMAND_EXECUTED,
                {"command": "c", "exit_code": _HUGE, "duration_ms": ms},
            ),
            foreign_at(n, MetricType.HOOK_TRIGGERED, {"hook_name": "h", "duration_ms": ms}),
        ]
    sid = "big"
    entries += [
        foreign_at(10, MetricType.SESSION_START, {}, sid),
        foreign_at(20, MetricType.SESSION_END, {"duration_seconds": _HUGE}, sid),
        foreign_at(
            11,
            MetricType.TOKEN_USAGE,
            {"model": "m", "input_tokens": _HUGE, "output_tokens": 5},
            sid,
        ),
        foreign_at(
            12,
            MetricType.TOKEN_USAGE,
            {"model": "m", "input_tokens": _TOO_MANY, "output_tokens": 6},
            sid,
        ),
        foreign_at(
            13, MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c", "files_changed": _HUGE}, sid
        ),
        foreign_at(
            14, MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "d", "files_changed": 4}, sid
        ),
    ]
    return entries


def check_huge_values_skipped(summary: Summary) -> None:
    for runs in (
        summary.tools,
        summary.operations,
        summary.agents,
        summary.commands,
        summary.hooks,
    ):
        (run,) = runs.values()
        assert (run.duration_ms_p50, run.duration_ms_max) == (2.0, 4.0)
    assert summary.commands["c"].failures == 0  # an exit code no float holds says nothing
    assert summary.sessions.duration_s_max == 10.0  # end minus start instead
    model = summary.tokens_by_model["m"]
    assert (model.calls, model.input_tokens, model.output_tokens) == (2, 0, 11)
    assert summary.sessions.tokens_total == 11
    assert summary.checkpoints.count == 2
    assert summary.checkpoints.files_changed_total == summary.checkpoints.files_changed_max == 4


class TestNumbersNoFloatHolds:
    def test_other_writers_lines_hold_them_so_the_summary_must_cope(self) -> None:
        with pytest.raises(ValidationError):  # refused when an entry is built here...
            MetricEntry(type=MetricType.PERFORMANCE, data={"duration_ms": _HUGE})
        line = line_of(foreign_at(0, MetricType.PERFORMANCE, {"duration_ms": _HUGE}))
        assert MetricEntry.from_json_line(line).data["duration_ms"] == _HUGE  # ...not read

    def test_python_engine_skips_them(self, tmp_path: Path) -> None:
        entries = huge_entries()
        check_huge_values_skipped(summarize_entries(entries))
        write_files(tmp_path, entries)
        check_huge_values_skipped(summarize(tmp_path))

    def test_duckdb_engine_skips_them_alike(self, tmp_path: Path) -> None:
        pytest.importorskip("duckdb")
        from analytics import summarize_duckdb

        write_files(tmp_path, huge_entries())
        python, sql = summarize(tmp_path), summarize_duckdb(tmp_path)
        check_huge_values_skipped(sql)
        assert python.model_dump() == sql.model_dump()

    def test_a_float_literal_beyond_range_is_skipped_too(self, tmp_path: Path) -> None:
        """``1e999`` is valid JSON that parses to infinity."""
        line = foreign_at(0, MetricType.PERFORMANCE, {"operation": "op", "duration_ms": 7.0})
        raw = line.to_json_line().replace(b"7.0", b"1e999")
        write_files(
            tmp_path,
            [foreign_at(1, MetricType.PERFORMANCE, {"operation": "op", "duration_ms": 3.0})],
            1,
            raw,
        )
        summary = summarize(tmp_path)
        assert summary.operations["op"].duration_ms_max == 3.0
        for fmt in FORMATS:
            render(summary, fmt)


class TestMerging:
    _kinds = st.sampled_from(
        [
            (MetricType.PERFORMANCE, {"operation": "http", "success": True, "duration_ms": 0.4}),
            (MetricType.PERFORMANCE, {"operation": "http", "success": False, "duration_ms": 9}),
            (MetricType.PERFORMANCE, {"operation": "db", "success": True, "duration_ms": _HUGE}),
            (MetricType.AGENT_EXECUTION, {"agent_name": "a", "success": False, "duration_ms": 2.5}),
            (MetricType.COMMAND_EXECUTED, {"command": "ls", "exit_code": 1, "duration_ms": 1.0}),
            (MetricType.COMMAND_EXECUTED, {"command": "ls", "exit_code": 0, "success": True}),
            (MetricType.HOOK_TRIGGERED, {"hook_name": "h", "duration_ms": 0.25}),
            (MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c", "files_changed": 3}),
            (MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c", "files_changed": -1}),
            (MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c"}),
            (MetricType.TOOL_USE, {"tool_name": "grep", "success": False, "duration_ms": 3}),
        ]
    )

    @given(
        events=st.lists(
            st.tuples(st.integers(0, 20_000), _kinds, st.sampled_from(["s1", "s2", None])),
            max_size=40,
            unique_by=lambda event: event[0],
        ),
        cut=st.integers(0, 40),
        exact_limit=st.sampled_from([1, 3, 100_000]),
    )
    def test_merged_totals_are_the_totals_of_everything_in_either_order(
        self,
        events: list[tuple[int, tuple[MetricType, dict[str, Any]], str | None]],
        cut: int,
        exact_limit: int,
    ) -> None:
        from analytics._read import summary as _summary

        entries = [foreign_at(second, kind, data, sid) for second, (kind, data), sid in events]
        with pytest.MonkeyPatch.context() as patch:  # sketches merge as well as lists
            patch.setattr(_summary.Quantiles.__init__, "__defaults__", (exact_limit,))
            expected = summarize_entries(entries)
            for first, second in ((entries[:cut], entries[cut:]), (entries[cut:], entries[:cut])):
                left, right = _summary._Totals(), _summary._Totals()
                for e in first:
                    left.add_entry(e)
                for e in second:
                    right.add_entry(e)
                left.merge(right)
                got = left.summary()
                for field in ("operations", "agents", "commands", "hooks", "checkpoints", "tools"):
                    assert getattr(got, field) == getattr(expected, field), field
                assert got.percentiles_exact == expected.percentiles_exact

    def test_worker_processes_give_the_same_new_sections(self, tmp_path: Path) -> None:
        entries = [
            foreign_at(i, kind, data, f"s{i % 4}")
            for i, (kind, data) in enumerate(
                [
                    (
                        MetricType.PERFORMANCE,
                        {"operation": "http", "success": i % 5 > 0, "duration_ms": i / 7},
                    )
                    for i in range(60)
                ]
                + [
                    (MetricType.COMMAND_EXECUTED, {"command": "ls", "exit_code": i % 3})
                    for i in range(30)
                ]
                + [
                    (MetricType.CHECKPOINT_CREATED, {"checkpoint_id": "c", "files_changed": i})
                    for i in range(30)
                ]
            )
        ]
        write_files(tmp_path, entries, files=9)
        one, several = summarize(tmp_path), summarize(tmp_path, workers=2)
        assert several == one
        assert one.operations["http"].count == 60
        assert one.checkpoints.files_changed_total == sum(range(30))


def test_the_mean_session_duration_survives_approximate_percentiles() -> None:
    """Beyond the exact limit the percentiles come from a sketch; the mean is still
    the mean (it used to vanish with the exact values)."""
    from analytics._read import quantiles as _quantiles

    entries = [
        foreign_at(i, MetricType.SESSION_END, {"duration_seconds": seconds}, f"s{i}")
        for i, seconds in enumerate([10.0, 20.0, 60.0])
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_quantiles.Quantiles.__init__, "__defaults__", (1,))
        summary = summarize_entries(entries)
    assert summary.percentiles_exact is False
    assert summary.sessions.duration_s_mean == pytest.approx(30.0)
    assert summary.sessions.duration_s_max == 60.0
