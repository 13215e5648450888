"""The public API is exactly what analytics/__init__.py lists."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import analytics


def test_all_is_sorted_and_complete() -> None:
    # Submodules (analytics.testing, once imported) are reached by their own path.
    public = {
        name
        for name in dir(analytics)
        if not name.startswith("_") and not isinstance(getattr(analytics, name), ModuleType)
    }
    assert set(analytics.__all__) - {"__version__"} == public
    # Sorted as ruff sorts it: classes first, then functions and dunders, each A-Z.
    assert analytics.__all__ == sorted(analytics.__all__, key=lambda n: (not n[0].isupper(), n))


def test_the_documented_names_are_importable() -> None:
    from analytics import AnalyticsError, JSONLWriter, MetricEntry, MetricsWriter, MetricType

    assert issubclass(analytics.WriteError, AnalyticsError)
    assert all([JSONLWriter, MetricEntry, MetricsWriter, MetricType])


def test_py_typed_is_shipped() -> None:
    assert (Path(analytics.__file__).parent / "py.typed").exists()
