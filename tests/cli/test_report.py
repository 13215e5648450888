"""``analytics report``: every format, filters, an output file, and a self-contained HTML page."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

from analytics import (
    MetricEntry,
)
from analytics.__main__ import main

from ..helpers import run_cli


class TestCommands:
    def test_report_formats(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        text = run_cli("report", str(tmp_path))
        assert text.returncode == 0, text.stderr
        assert "100 entries" in text.stdout
        assert "grep" in text.stdout
        as_json = json.loads(run_cli("report", str(tmp_path), "--format", "json").stdout)
        assert as_json["entries"] == 100
        assert as_json["tools"]["edit"]["failures"] == 10
        assert as_json["bad_lines"] == 2
        markdown = run_cli("report", str(tmp_path), "--format", "markdown").stdout
        assert "| tool | calls |" in markdown
        rows = list(
            csv.reader(run_cli("report", str(tmp_path), "--format", "csv").stdout.splitlines())
        )
        assert rows[0][0] == "tool"
        assert {r[0] for r in rows[1 : rows.index([])]} == {"edit", "grep"}  # the first table

    def test_report_filters_and_output_file(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        out = tmp_path / "r.json"
        done = run_cli(
            "report",
            str(tmp_path),
            "--session",
            "a",
            "--format",
            "json",
            "--output",
            str(out),
            "--since",
            "2026-11-01T12:00:10Z",
        )
        assert done.returncode == 0, done.stderr
        data = json.loads(out.read_text())
        assert data["entries"] == 45
        assert list(data["tools"]) == ["grep"]

    def test_html_report_is_self_contained_with_svg_charts(
        self, tmp_path: Path, two_processes: list[MetricEntry]
    ) -> None:
        out = tmp_path / "report.html"
        assert main(["report", str(tmp_path), "--format", "html", "--output", str(out)]) == 0

        class Collect(HTMLParser):
            def __init__(self) -> None:
                super().__init__()
                self.tags: list[tuple[str, dict[str, str | None]]] = []

            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                self.tags.append((tag, dict(attrs)))

        parser = Collect()
        parser.feed(out.read_text())
        tags = [t for t, _ in parser.tags]
        assert tags[0] == "html"
        assert tags.count("svg") == 2  # entries over time (buckets follow the span), tool latency
        assert tags.count("circle") == 6  # p50, p95, p99 of two tools
        assert tags.count("table") == 2  # entries by type, tools
        scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
        assert scripts == [{}]  # one, inline
        for _, attrs in parser.tags:
            for key in ("src", "href"):
                value = attrs.get(key) or ""
                assert not value.startswith(("http", "//")), value
        assert "link" not in tags
