"""The exception tree: every error the library raises is an AnalyticsError, drawn in
docs/errors.md, and keeps the builtin base a caller may already catch."""

from __future__ import annotations

import inspect
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import analytics

from .helpers import PUBLIC, ROOT

ERRORS = [
    getattr(analytics, n)
    for n in PUBLIC
    if inspect.isclass(getattr(analytics, n)) and issubclass(getattr(analytics, n), Exception)
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.__name__)
def test_every_error_is_in_the_tree_and_drawn_in_the_docs(error: type[Exception]) -> None:
    assert issubclass(error, analytics.AnalyticsError)
    assert error.__name__ in (ROOT / "docs" / "errors.md").read_text()


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (analytics.ConfigError, ValueError),
        (analytics.ArgumentTypeError, TypeError),
        (analytics.SerializationError, ValueError),
        (analytics.WriterStateError, RuntimeError),
        (analytics.WriteError, OSError),
        (analytics.ReadError, OSError),
        (analytics.MetricsDirNotFoundError, FileNotFoundError),
        (analytics.NotAMetricsDirError, NotADirectoryError),
        (analytics.FilterError, ValueError),
        (analytics.ReportFormatError, ValueError),
        (analytics.MissingDependencyError, ModuleNotFoundError),
    ],
)
def test_errors_keep_their_builtin_base(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, builtin)


def test_read_errors_are_built_like_os_errors() -> None:
    exc = analytics.MetricsDirNotFoundError(2, "no such directory", "/nowhere")
    assert (exc.errno, exc.strerror, exc.filename) == (2, "no such directory", "/nowhere")
    assert isinstance(exc, analytics.ReadError)


class TestTheLibraryRaisesItsOwnErrors:
    """Each error the library raises for bad input is in the tree, and still the
    builtin a caller may already catch."""

    def test_a_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(analytics.MetricsDirNotFoundError) as info:
            list(analytics.iter_entries(tmp_path / "nope"))
        assert isinstance(info.value, FileNotFoundError)
        assert info.value.filename == str(tmp_path / "nope")
        with pytest.raises(analytics.ReadError):
            analytics.summarize(tmp_path / "nope")

    def test_a_file_where_a_directory_belongs(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("")
        with pytest.raises(analytics.NotAMetricsDirError) as info:
            list(analytics.iter_entries(tmp_path / "f"))
        assert isinstance(info.value, NotADirectoryError)

    @pytest.mark.parametrize(
        "filters",
        [
            {"since": datetime(2026, 1, 1)},
            {"until": datetime(2026, 1, 1)},
            {"types": ["no_such_type"]},
        ],
        ids=["naive since", "naive until", "unknown type"],
    )
    def test_a_filter_that_cannot_be_used(self, tmp_path: Path, filters: dict[str, Any]) -> None:
        (tmp_path / "metrics").mkdir()
        with pytest.raises(analytics.FilterError) as info:
            list(analytics.iter_entries(tmp_path, **filters))
        assert isinstance(info.value, ValueError)
        with pytest.raises(analytics.FilterError):
            analytics.summarize(tmp_path, **filters)

    def test_an_unknown_filter_keyword(self, tmp_path: Path) -> None:
        (tmp_path / "metrics").mkdir()
        with pytest.raises(analytics.ArgumentTypeError, match="sesion_id"):
            list(analytics.iter_entries(tmp_path, sesion_id="s"))  # type: ignore[call-arg]

    def test_an_unknown_report_format(self) -> None:
        from analytics._report import render

        with pytest.raises(analytics.ReportFormatError, match="pdf") as info:
            render(_empty_summary(), "pdf")
        assert isinstance(info.value, ValueError)

    async def test_a_wrong_argument_type(self, tmp_path: Path) -> None:
        async with analytics.JSONLWriter(tmp_path) as writer:
            with pytest.raises(analytics.ArgumentTypeError):
                await writer.write("not an entry")  # type: ignore[arg-type]
            metrics = analytics.MetricsWriter(writer)
            with pytest.raises(analytics.ArgumentTypeError) as info:
                await metrics.track_tool_use("s", "grep", success="yes")  # type: ignore[arg-type]
            assert isinstance(info.value, TypeError)


def _empty_summary() -> analytics.Summary:
    from analytics._read.summary import summarize_entries

    return summarize_entries([])


def test_a_missing_optional_dependency_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "metrics").mkdir()
    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if it were not installed
    with pytest.raises(
        analytics.MissingDependencyError, match=r"asyncio-jsonl-analytics\[duckdb\]"
    ) as info:
        analytics.summarize_duckdb(tmp_path)
    assert isinstance(info.value, ModuleNotFoundError)
    assert info.value.name == "duckdb"
