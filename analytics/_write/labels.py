"""Bounded label values for the metrics sinks (Prometheus, OpenTelemetry).

A metrics backend keeps one time series per distinct set of label values, so a label
whose values are unbounded (a session id, a user id, a free-text message) makes it
grow without end. The sinks only ever label by names (a tool, a model, an error
type, an operation), and even those are capped: the first ``max_values`` distinct
values of each label are kept, every later one is counted under ``"other"``.
Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "DURATION_BUCKETS",
    "OTHER",
    "UNKNOWN",
    "LabelValues",
    "amount",
    "outcome",
    "seconds",
    "token_counts",
]

OTHER = "other"
"""The value every label value past the bound is counted under."""

UNKNOWN = "unknown"
"""The value of a label whose field is missing or not a string."""

MAX_VALUE_LENGTH = 128
"""A longer value is not a name but text: it is counted under ``"other"``."""

DURATION_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
"""Histogram buckets (seconds) of the tool and operation durations: 1 ms to a minute."""

TOKEN_DIRECTIONS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_read_tokens", "cache_read"),
    ("cache_write_tokens", "cache_write"),
)


class LabelValues:
    """The values seen so far of each label, at most ``max_values`` per label.

    Args:
        max_values: distinct values kept per label before others become ``"other"``.
    """

    def __init__(self, max_values: int = 100) -> None:
        if max_values.__class__ is not int or max_values < 1:
            raise ValueError(f"max_values must be a positive int, not {max_values!r}")
        self.max_values = max_values
        self.seen: dict[str, set[str]] = {}
        self.overflowed: dict[str, int] = {}
        """How many values of each label were counted under ``"other"``."""

    def value(self, label: str, raw: object) -> str:
        """The value to use for ``raw`` under ``label``: ``raw`` itself while the
        label has room (or already holds it), ``"other"`` once it is full,
        ``"unknown"`` for a missing or non-string value."""
        if raw.__class__ is not str:
            return UNKNOWN
        assert isinstance(raw, str)
        seen = self.seen.get(label)
        if seen is None:
            seen = self.seen[label] = set()
        if raw in seen:
            return raw
        if len(seen) < self.max_values and 0 < len(raw) <= MAX_VALUE_LENGTH and raw != OTHER:
            seen.add(raw)
            return raw
        self.overflowed[label] = self.overflowed.get(label, 0) + 1
        return OTHER


def outcome(data: Mapping[str, Any]) -> str:
    """``"success"``, ``"failure"`` or ``"unknown"`` from an entry's ``success``."""
    success = data.get("success")
    if success is True:
        return "success"
    if success is False:
        return "failure"
    return UNKNOWN


def token_counts(data: Mapping[str, Any]) -> list[tuple[str, int]]:
    """The ``(direction, tokens)`` pairs a ``token_usage`` entry's data holds, each a
    non-negative int (a count that is not one is left out)."""
    counts = []
    for key, direction in TOKEN_DIRECTIONS:
        value = data.get(key)
        if value.__class__ is int and value >= 0:
            counts.append((direction, value))
    return counts


def amount(data: Mapping[str, Any], key: str) -> float | None:
    """``data[key]`` as a float, if it is a finite non-negative number (not a bool)."""
    value = data.get(key)
    kind = value.__class__
    if (kind is float or kind is int) and 0 <= value < _INFINITY:  # type: ignore[operator]
        return float(value)  # type: ignore[arg-type]
    return None


def seconds(data: Mapping[str, Any], key: str = "duration_ms") -> float | None:
    """``data[key]`` (milliseconds) in seconds, if it is a finite non-negative number."""
    milliseconds = amount(data, key)
    return None if milliseconds is None else milliseconds / 1000.0


_INFINITY = float("inf")
