"""Rendering a Summary: a section per kind of entry in text, Markdown, CSV and HTML,
and none for what is absent."""

from __future__ import annotations

import csv
import json

import pytest

from analytics import MetricType, Summary
from analytics._read.summary import summarize_entries
from analytics._report import FORMATS, render

from ..helpers import foreign_at


class TestRendering:
    def test_text_and_markdown_have_a_section_per_kind(self, every_kind: Summary) -> None:
        for fmt in ("text", "markdown"):
            out = render(every_kind, fmt)
            for heading in ("Operations", "Agents", "Commands", "Hooks", "Checkpoints"):
                assert heading in out, (fmt, heading)
            for name in ("http.request", "planner", "pytest -q", "pre-commit"):
                assert name in out
            assert "3 checkpoints in 2 sessions" in out

    def test_sub_millisecond_durations_are_shown_as_such(self, every_kind: Summary) -> None:
        text = render(every_kind, "text")
        (row,) = [line for line in text.splitlines() if line.startswith("http.request")]
        assert row.split()[4:] == ["0.42", "ms", "0.5", "ms", "0.5", "ms", "0.5", "ms"]
        assert "0.0" not in row
        assert "| http.request | 4 | 1 | 75.0% | 0.42 ms | 0.5 ms |" in render(
            every_kind, "markdown"
        )

    def test_absent_kinds_have_no_section(self) -> None:
        only_requests = summarize_entries(
            [
                foreign_at(
                    0, MetricType.PERFORMANCE, {"operation": "http.request", "duration_ms": 0.3}
                )
            ]
        )
        for fmt in ("text", "markdown", "html"):
            out = render(only_requests, fmt)
            assert "Operations" in out
            for heading in (
                "Tools",
                "Agents",
                "Commands",
                "Hooks",
                "Checkpoints",
                "Errors",
                "Tokens",
            ):
                assert heading not in out, (fmt, heading)
        as_json = json.loads(render(only_requests, "json"))
        assert as_json["agents"] == {}
        assert as_json["checkpoints"]["count"] == 0

    def test_csv_has_every_table(self, every_kind: Summary) -> None:
        rows = list(csv.reader(render(every_kind, "csv").splitlines()))
        tables: dict[str, list[dict[str, str]]] = {}
        start = 0
        for end in [*(i for i, row in enumerate(rows) if not row), len(rows)]:
            header, *body = rows[start:end]
            tables[header[0]] = [dict(zip(header, row, strict=True)) for row in body]
            start = end + 1
        assert list(tables) == [
            "operation",
            "agent",
            "command",
            "hook",
            "checkpoints",
            "sessions",
            "type",
            "hour",
            "entries",
        ]
        http = tables["operation"][1]
        assert (http["operation"], http["count"], http["duration_ms_p50"]) == (
            "http.request",
            "4",
            "0.42",
        )
        assert tables["command"][1]["failures"] == "1"
        assert tables["checkpoints"] == [
            {
                "checkpoints": "3",
                "sessions": "2",
                "files_changed_total": "10",
                "files_changed_mean": "5.0",
                "files_changed_max": "7",
            }
        ]
        assert tables["entries"][0]["entries"] == str(every_kind.entries)

    @pytest.mark.parametrize("fmt", FORMATS)
    def test_an_empty_summary_is_an_empty_report(self, fmt: str) -> None:
        out = render(Summary(), fmt)
        assert out.endswith("\n")
        if fmt in ("text", "markdown", "html"):
            assert "No entries." in out
            assert "Entries by type" not in out
        if fmt == "json":
            assert Summary.model_validate_json(out) == Summary()
        if fmt == "csv":
            assert list(csv.reader(out.splitlines())) == [
                ["entries", "first", "last", "bad_lines", "percentiles_exact"],
                ["0", "", "", "0", "True"],
            ]

    def test_markdown_cells_stay_in_their_column(self) -> None:
        summary = summarize_entries(
            [
                foreign_at(
                    0, MetricType.COMMAND_EXECUTED, {"command": "ls | grep x\nwc", "exit_code": 0}
                )
            ]
        )
        (row,) = [line for line in render(summary, "markdown").splitlines() if "ls" in line]
        assert row.startswith("| ls \\| grep x wc | 1 |")

    def test_an_unknown_format_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown report format 'yaml'"):
            render(Summary(), "yaml")
