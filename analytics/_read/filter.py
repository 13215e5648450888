"""Which files and entries a read takes: the filter keywords, declared once.

Every reader (``iter_entries``, ``read_entries``, ``summarize``, ``summarize_duckdb``)
takes the same keywords, as ``**filters: Unpack[FilterKeywords]``, and turns them into
one :class:`Filter`, which checks them. A new keyword is added here, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict, Unpack

from .._bounds import TimeBounds
from .._exceptions import ArgumentTypeError, FilterError
from .._models import MetricEntry, MetricType

__all__ = ["Filter", "FilterKeywords"]


class FilterKeywords(TypedDict, total=False):
    """The keywords every reader takes. All are optional.

    Attributes:
        since: only entries at or after this timezone-aware datetime.
        until: only entries before this timezone-aware datetime.
        types: only these types (``MetricType`` members or their values).
        session_id: only this session.
        user_id: only this user.
        prefix: the writer's ``filename_prefix`` (default ``"metrics"``): which files
            are read at all.
    """

    since: datetime | None
    until: datetime | None
    types: Iterable[MetricType | str] | None
    session_id: str | None
    user_id: str | None
    prefix: str


class Filter:
    """The filter keywords of one read, checked.

    Args:
        **filters: the :class:`FilterKeywords`.

    Raises:
        ValueError: ``since`` or ``until`` is naive, or a type is unknown.
        TypeError: an unknown keyword.
    """

    __slots__ = (
        "active",
        "prefix",
        "session_id",
        "since",
        "type_names",
        "types",
        "until",
        "user_id",
    )

    def __init__(self, **filters: Unpack[FilterKeywords]) -> None:
        unknown = filters.keys() - FilterKeywords.__annotations__.keys()
        if unknown:
            raise ArgumentTypeError(f"unexpected filter keyword(s): {', '.join(sorted(unknown))}")
        since, until = filters.get("since"), filters.get("until")
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.utcoffset() is None:
                raise FilterError(f"{name} must be timezone-aware, got {value!r}")
        types = filters.get("types")
        self.since: datetime | None = since
        self.until: datetime | None = until
        self.types: frozenset[MetricType] | None = (
            frozenset(_metric_type(t) for t in types) if types else None
        )
        self.type_names: frozenset[str] | None = (
            frozenset(t.value for t in self.types) if self.types else None
        )
        self.session_id: str | None = filters.get("session_id")
        self.user_id: str | None = filters.get("user_id")
        self.prefix: str = filters.get("prefix", "metrics")
        self.active: bool = any(
            v is not None for v in (since, until, self.types, self.session_id, self.user_id)
        )
        """Whether any entry can be left out (``prefix`` chooses files, not entries)."""

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("since", "until", "types", "session_id", "user_id")
            if getattr(self, name) is not None
        )
        return f"Filter({shown}{', ' if shown else ''}prefix={self.prefix!r})"

    @property
    def windowed(self) -> bool:
        """Whether ``since`` or ``until`` is set: whole files can then be skipped."""
        return self.since is not None or self.until is not None

    def may_hold(self, bounds: TimeBounds | None) -> bool:
        """Whether a file whose entry times lie within ``bounds`` may hold an entry
        in ``[since, until)``; a file whose bounds are unknown (``None``) may."""
        return bounds is None or bounds.overlaps(self.since, self.until)

    def matches(
        self, kind: str, moment: datetime, session_id: str | None, user_id: str | None
    ) -> bool:
        """:meth:`__call__` for a line read without building an entry."""
        return (
            (self.since is None or moment >= self.since)
            and (self.until is None or moment < self.until)
            and (self.type_names is None or kind in self.type_names)
            and (self.session_id is None or session_id == self.session_id)
            and (self.user_id is None or user_id == self.user_id)
        )

    def __call__(self, e: MetricEntry) -> bool:
        """Whether the read keeps entry ``e``."""
        return (
            (self.since is None or e.timestamp >= self.since)
            and (self.until is None or e.timestamp < self.until)
            and (self.types is None or e.type in self.types)
            and (self.session_id is None or e.session_id == self.session_id)
            and (self.user_id is None or e.user_id == self.user_id)
        )


def _metric_type(value: MetricType | str) -> MetricType:
    try:
        return MetricType(value)
    except ValueError:
        choices = ", ".join(t.value for t in MetricType)
        raise FilterError(f"unknown entry type {value!r}: choose from {choices}") from None
