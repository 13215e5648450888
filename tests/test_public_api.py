"""The public API is even: every public class and function is shown as analytics.X,
the version comes from the installed metadata only, every error belongs to the
AnalyticsError tree and keeps its builtin base, and the Summary's parts are exported."""

from __future__ import annotations

import enum
import inspect
import pickle
import re
import typing
from importlib import metadata
from pathlib import Path

import pytest
from pydantic import BaseModel

import analytics

PUBLIC = [name for name in analytics.__all__ if not name.startswith("__")]
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_is_shown_as_analytics_x(name: str) -> None:
    thing = getattr(analytics, name)
    assert thing.__module__ == "analytics"
    if inspect.isclass(thing) and not issubclass(thing, enum.Enum):
        assert repr(thing) == f"<class 'analytics.{name}'>"


def test_an_error_in_a_traceback_names_the_public_class() -> None:
    import traceback

    try:
        raise analytics.WriteError("disk full", pending=3)
    except analytics.WriteError as exc:
        text = "".join(traceback.format_exception_only(exc))
    assert text.startswith("analytics.WriteError: disk full")


def test_public_objects_still_pickle() -> None:
    entry = analytics.MetricEntry(type=analytics.MetricType.TOOL_USE, session_id="s")
    assert pickle.loads(pickle.dumps(entry)) == entry
    config = analytics.WriterConfig(max_files=3)
    assert pickle.loads(pickle.dumps(config)) == config


def test_the_version_is_the_installed_metadata_and_written_nowhere_else() -> None:
    assert analytics.__version__ == metadata.version("asyncio-jsonl-analytics")
    version = re.escape(analytics.__version__)
    for path in (ROOT / "analytics").rglob("*.py"):
        assert not re.search(rf"[\"']{version}[\"']", path.read_text()), path


def test_every_summary_part_is_exported() -> None:
    """Each pydantic model a Summary field holds (directly or in a dict) is public."""
    parts: set[type] = set()
    for field in analytics.Summary.model_fields.values():
        hint = field.annotation
        for arg in (hint, *typing.get_args(hint)):
            if inspect.isclass(arg) and issubclass(arg, BaseModel):
                parts.add(arg)
    assert parts
    for part in parts:
        assert getattr(analytics, part.__name__) is part


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
