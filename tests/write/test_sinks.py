"""LoggingSink: one JSON line per entry through logging, at its level."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from analytics import (
    LoggingSink,
    MetricEntry,
    MetricType,
)


class TestLoggingSink:
    async def test_writes_one_json_line_per_entry_at_its_level(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        logger = logging.getLogger("test.sink")
        sink = LoggingSink(logger, level=logging.WARNING)
        entry = MetricEntry(type=MetricType.TOKEN_USAGE, data={"text": "a\nb"})
        with caplog.at_level(logging.DEBUG, logger="test.sink"):
            await sink.write(entry)
            await sink.flush()
            await sink.close()
        (record,) = caplog.records
        assert record.levelno == logging.WARNING
        message = record.getMessage()
        assert "\n" not in message
        assert json.loads(message) == entry.to_dict()
        assert record.analytics_entry == entry.to_dict()  # type: ignore[attr-defined]

    async def test_a_disabled_level_costs_nothing(
        self, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A disabled level must not even serialize the entry (the logger would drop
        the record anyway, so only the work not done can show it)."""
        logger = logging.getLogger("test.quiet")
        monkeypatch.setattr(logger, "level", logging.ERROR)
        serialized: list[str] = []

        def counting(method: str) -> Any:
            real = getattr(MetricEntry, method)

            def spy(self: MetricEntry, *args: Any, **kwargs: Any) -> Any:
                serialized.append(method)
                return real(self, *args, **kwargs)

            return spy

        for method in ("to_json_line", "to_dict"):
            monkeypatch.setattr(MetricEntry, method, counting(method))
        sink = LoggingSink(logger)
        await sink.write(MetricEntry(type=MetricType.TOOL_USE))
        assert serialized == []
        assert caplog.records == []
        # The same sink at an enabled level does serialize: the spy does see it.
        monkeypatch.setattr(logger, "level", logging.DEBUG)
        with caplog.at_level(logging.DEBUG, logger="test.quiet"):
            await sink.write(MetricEntry(type=MetricType.TOOL_USE))
        assert sorted(serialized) == ["to_dict", "to_json_line"]
        assert len(caplog.records) == 1
