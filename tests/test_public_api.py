"""The public API is even: every public class and function is shown as analytics.X,
the version comes from the installed metadata only, and the Summary's parts are
exported (the error tree: test_exceptions.py)."""

from __future__ import annotations

import enum
import inspect
import pickle
import re
import typing
from importlib import metadata

import pytest
from pydantic import BaseModel

import analytics

from .helpers import PUBLIC, ROOT


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
