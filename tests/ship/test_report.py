"""The report's figures on a central engine: filters become SQL conditions, and a bad
filter fails before any connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analytics import FilterError, JSONLWriter, MetricsWriter, Shipper, summarize, summarize_central

from .central import FAST, Central, reports_on_server

T0 = datetime.now(UTC).replace(microsecond=0)


async def test_filters_select_what_the_python_engine_selects(
    tmp_path: Path, central: Central
) -> None:
    async with JSONLWriter(tmp_path) as writer:
        metrics = MetricsWriter(writer)
        for i in range(60):
            await metrics.track_tool_use(f"s{i % 3}", f"t{i % 4}", i % 5 != 0, duration_ms=i)
            await metrics.track_error(f"s{i % 3}", "Boom", "x")
    async with Shipper(tmp_path, central.url, **FAST) as shipper:
        await shipper.ship_once()
    if not await reports_on_server(central):
        return  # ClickHouse 18.16: its one-line error is what was checked
    for filters in (
        {"session_id": "s1"},
        {"types": ["error_occurred"]},
        {"since": T0 - timedelta(days=1), "until": T0 + timedelta(days=1)},
        {"until": T0 - timedelta(days=1)},
    ):
        remote = await summarize_central(central.url, **filters)
        local = summarize(tmp_path, **filters)
        assert remote.model_dump() == local.model_dump(), filters
    mine = await summarize_central(central.url, source=shipper.source)
    assert mine.entries == 120
    assert (await summarize_central(central.url, source="elsewhere")).entries == 0


async def test_a_bad_filter_fails_before_any_connection() -> None:
    with pytest.raises(FilterError, match="timezone-aware"):
        await summarize_central("postgresql://u@127.0.0.1:9/db", since=datetime(2026, 1, 1))
