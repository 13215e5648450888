"""The public API is exactly what analytics/__init__.py lists."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import analytics

from .helpers import BLOCKS


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
    """Every name the docs import from ``analytics`` is a public, listed name: a
    name the docs teach cannot be dropped from ``__all__`` or left private."""
    documented: set[str] = set()
    for block in BLOCKS:
        for node in ast.walk(ast.parse(block.code)):
            if isinstance(node, ast.ImportFrom) and node.module == "analytics":
                documented.update(alias.name for alias in node.names)
    assert {"JSONLWriter", "MetricEntry", "MetricsWriter", "MetricType"} <= documented
    assert sorted(documented - set(analytics.__all__)) == []
    for name in documented:
        assert getattr(analytics, name).__module__ == "analytics"


def test_py_typed_is_shipped() -> None:
    assert (Path(analytics.__file__).parent / "py.typed").exists()
