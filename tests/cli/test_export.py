"""``analytics export``: JSON Lines, CSV and Parquet copies, and the format from the extension."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import (
    MetricEntry,
)

from ..helpers import run_cli, run_main, write_tools_at


class TestCommands:
    def test_export_jsonl_and_csv(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        out = tmp_path / "out.jsonl"
        assert run_cli("export", str(tmp_path), str(out), "--type", "tool_use").returncode == 0
        exported = [MetricEntry.from_json_line(line) for line in out.read_bytes().splitlines()]
        assert exported == two_processes
        out_csv = tmp_path / "out.csv"
        done = run_cli(
            "export",
            str(tmp_path),
            str(out_csv),
            "--format",
            "csv",
            "--until",
            "2026-11-01T12:00:04+00:00",
        )
        assert done.returncode == 0, done.stderr
        with out_csv.open() as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 4
        assert json.loads(rows[0]["data"])["tool_name"] == "grep"

    def test_export_parquet(self, tmp_path: Path, two_processes: list[MetricEntry]) -> None:
        duckdb = pytest.importorskip("duckdb")
        out = tmp_path / "out.parquet"
        done = run_cli("export", str(tmp_path), str(out), "--format", "parquet", "--session", "b")
        assert done.returncode == 0, done.stderr
        assert not list(tmp_path.glob("*.tmp"))  # the staging file is gone
        con = duckdb.connect()
        rows = con.execute(  # epoch_us: fetching a TIMESTAMPTZ would need pytz
            "SELECT id, epoch_us(timestamp), type, session_id, user_id, data, metadata,"
            " typeof(timestamp) FROM read_parquet(?)",
            [str(out)],
        ).fetchall()
        expected = [e for e in two_processes if e.session_id == "b"]
        assert [row[0] for row in rows] == [e.id for e in expected]  # merged order
        for (_, micros, kind, sid, uid, data, metadata, sql_type), e in zip(
            rows, expected, strict=True
        ):
            assert sql_type == "TIMESTAMP WITH TIME ZONE"
            assert micros == round(e.timestamp.timestamp() * 1_000_000)
            assert (kind, sid, uid) == (e.type.value, e.session_id, e.user_id)
            assert json.loads(data) == e.data
            assert json.loads(metadata) == e.metadata

    def test_export_parquet_without_entries_is_an_empty_file(self, tmp_path: Path) -> None:
        duckdb = pytest.importorskip("duckdb")
        (tmp_path / "metrics").mkdir()
        out = tmp_path / "out.parquet"
        done = run_cli("export", str(tmp_path), str(out))
        assert done.returncode == 0, done.stderr
        assert "exported 0 entries" in done.stderr
        assert not list(tmp_path.glob("*.tmp"))
        con = duckdb.connect()
        columns = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(out)]).fetchall()
        assert [c[0] for c in columns] == [
            "id",
            "timestamp",
            "type",
            "session_id",
            "user_id",
            "data",
            "metadata",
        ]
        count = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()
        assert count == (0,)


class TestExportFormats:
    @pytest.fixture
    def data(self, tmp_path: Path) -> Path:
        now = datetime.now(UTC)
        write_tools_at(tmp_path / "metrics", [now - timedelta(seconds=s) for s in range(3)])
        return tmp_path

    def test_the_format_comes_from_the_extension(
        self, data: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for name in ("a.csv", "a.jsonl", "a.json", "a.ndjson", "A.CSV"):
            assert run_main(["export", str(data), str(data / name)], capsys)[0] == 0
        with (data / "a.csv").open() as f:
            assert len(list(csv.DictReader(f))) == 3
        assert (data / "A.CSV").read_text() == (data / "a.csv").read_text()
        lines = (data / "a.jsonl").read_bytes().splitlines()
        assert [MetricEntry.from_json_line(x) for x in lines] == [
            MetricEntry.model_validate(x) for x in json.loads((data / "a.json").read_text())
        ]
        assert (data / "a.ndjson").read_bytes() == (data / "a.jsonl").read_bytes()

    @pytest.mark.parametrize(
        ("name", "given", "message"),
        [
            ("out.txt", None, "cannot tell the format of"),
            ("out", None, "cannot tell the format of"),
            ("out.csv", "jsonl", "looks like csv"),
            ("out.jsonl", "csv", "looks like jsonl"),
        ],
    )
    def test_an_unknown_or_contradicted_extension_is_refused(
        self,
        data: Path,
        capsys: pytest.CaptureFixture[str],
        name: str,
        given: str | None,
        message: str,
    ) -> None:
        argv = ["export", str(data), str(data / name)]
        code, _, err = run_main([*argv, "--format", given] if given else argv, capsys)
        assert code == 1
        assert message in err
        assert len(err.splitlines()) == 1
        assert not (data / name).exists()

    def test_an_explicit_format_for_an_unknown_extension(
        self, data: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert (
            run_main(["export", str(data), str(data / "o.txt"), "--format", "csv"], capsys)[0] == 0
        )
        assert (data / "o.txt").read_text().startswith("id,timestamp,type")
