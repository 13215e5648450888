"""Filter: the filter keywords every reader takes, declared and checked once."""

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import MetricEntry, MetricType, iter_entries, read_entries, summarize
from analytics._read.duckdb_engine import summarize_duckdb
from analytics._read.filter import Filter, FilterKeywords

from ..strategies import entries

NAIVE = datetime(2026, 1, 1)


async def _read(path: Path, **filters: Any) -> list[MetricEntry]:
    return [e async for e in read_entries(path, **filters)]


def _run_async(path: Path, **filters: Any) -> list[MetricEntry]:
    import anyio

    return anyio.run(lambda: _read(path, **filters))


READERS: list[Callable[..., Any]] = [
    lambda path, **f: list(iter_entries(path, **f)),
    _run_async,
    summarize,
    summarize_duckdb,
]


class TestFilter:
    def test_naive_times_are_refused_naming_the_keyword(self) -> None:
        with pytest.raises(ValueError, match="since must be timezone-aware"):
            Filter(since=NAIVE)
        with pytest.raises(ValueError, match="until must be timezone-aware"):
            Filter(until=NAIVE)

    def test_an_unknown_type_is_refused(self) -> None:
        with pytest.raises(ValueError, match="nope"):
            Filter(types=["tool_use", "nope"])

    def test_an_unknown_keyword_is_refused(self) -> None:
        with pytest.raises(TypeError, match="sinse"):
            Filter(sinse=datetime.now(UTC))  # type: ignore[call-arg]

    def test_defaults_keep_everything_of_the_default_prefix(self) -> None:
        keep = Filter()
        assert (keep.active, keep.windowed, keep.prefix) == (False, False, "metrics")
        assert Filter(types=[]).types is None  # no types given: every type
        assert not Filter(prefix="other").active  # a prefix chooses files, not entries

    def test_types_are_taken_once_even_from_a_generator(self) -> None:
        keep = Filter(types=(t for t in ["tool_use", MetricType.ERROR_OCCURRED]))
        assert keep.types == frozenset({MetricType.TOOL_USE, MetricType.ERROR_OCCURRED})
        assert keep.type_names == frozenset({"tool_use", "error_occurred"})

    def test_pickles_for_worker_processes(self) -> None:
        keep = Filter(since=datetime.now(UTC), types=["tool_use"], user_id="u", prefix="p")
        copy = pickle.loads(pickle.dumps(keep))
        assert repr(copy) == repr(keep)
        assert copy.active
        assert copy.prefix == "p"

    @given(
        entries,
        st.none() | st.datetimes(timezones=st.just(UTC)),
        st.none() | st.datetimes(timezones=st.just(UTC)),
        st.none() | st.sets(st.sampled_from(list(MetricType)), max_size=3),
        st.none() | st.sampled_from(["s1", ""]),
        st.none() | st.sampled_from(["u1", ""]),
    )
    def test_a_line_and_its_entry_are_judged_alike(
        self,
        entry: MetricEntry,
        since: datetime | None,
        until: datetime | None,
        types: set[MetricType] | None,
        session_id: str | None,
        user_id: str | None,
    ) -> None:
        keep = Filter(since=since, until=until, types=types, session_id=session_id, user_id=user_id)
        by_fields = keep.matches(entry.type.value, entry.timestamp, entry.session_id, entry.user_id)
        expected = (
            (since is None or entry.timestamp >= since)
            and (until is None or entry.timestamp < until)
            and (not types or entry.type in types)
            and (session_id is None or entry.session_id == session_id)
            and (user_id is None or entry.user_id == user_id)
        )
        assert keep(entry) == by_fields == expected


class TestEveryReaderTakesTheSameKeywords:
    @pytest.mark.parametrize("reader", [iter_entries, read_entries, summarize, summarize_duckdb])
    def test_declared_once(self, reader: Callable[..., Any]) -> None:
        """The keywords come from FilterKeywords, not a copy of them."""
        parameters = inspect.signature(reader).parameters
        assert not parameters.keys() & FilterKeywords.__annotations__.keys()
        variadic = [p for p in parameters.values() if p.kind is p.VAR_KEYWORD]
        assert [p.annotation for p in variadic] == ["Unpack[FilterKeywords]"]

    @pytest.mark.parametrize("reader", READERS)
    def test_checked_alike(self, reader: Callable[..., Any], tmp_path: Path) -> None:
        if reader is summarize_duckdb:
            pytest.importorskip("duckdb")
        with pytest.raises(ValueError, match="until must be timezone-aware"):
            reader(tmp_path, until=NAIVE)
        with pytest.raises(ValueError, match="nope"):
            reader(tmp_path, types=["nope"])
        with pytest.raises(TypeError, match="sinse"):
            reader(tmp_path, sinse=datetime.now(UTC))

    @pytest.mark.parametrize("reader", READERS)
    def test_applied_alike(self, reader: Callable[..., Any], tmp_path: Path) -> None:
        if reader is summarize_duckdb:
            pytest.importorskip("duckdb")
        t0 = datetime(2026, 5, 1, tzinfo=UTC)
        metrics = tmp_path / "metrics"
        metrics.mkdir()
        kept = MetricEntry(type="tool_use", timestamp=t0, session_id="s", user_id="u")
        others = [
            MetricEntry(type="tool_use", timestamp=t0 - timedelta(hours=1), session_id="s"),
            MetricEntry(type="tool_use", timestamp=t0 + timedelta(hours=1), session_id="s"),
            MetricEntry(type="error_occurred", timestamp=t0, session_id="s", user_id="u"),
            MetricEntry(type="tool_use", timestamp=t0, session_id="x", user_id="u"),
            MetricEntry(type="tool_use", timestamp=t0, session_id="s", user_id="v"),
        ]
        lines = b"".join(e.to_json_line() for e in [kept, *others])
        (metrics / "metrics_20260501T110000.000000Z_p1_abcdef01.jsonl").write_bytes(lines)
        filters: FilterKeywords = {
            "since": t0 - timedelta(minutes=1),
            "until": t0 + timedelta(minutes=1),
            "types": (t for t in ["tool_use"]),  # taken once, by every reader
            "session_id": "s",
            "user_id": "u",
        }
        got = reader(tmp_path, **filters)
        count = len(got) if isinstance(got, list) else got.entries
        assert count == 1
        got = reader(metrics, prefix="nothing")
        assert (len(got) if isinstance(got, list) else got.entries) == 0
