"""The demo's simulated service: the data it records is consistent (a failed tool has
its error; session tokens add up)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from analytics import MetricType

from ..helpers import read_all, run_main


class TestDemo:
    def test_its_data_is_consistent(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A tool whose error is recorded failed; session tokens add up."""
        argv = ["demo", "--dir", str(tmp_path), "--seconds", "1", "--sessions", "20"]
        assert run_main(argv, capsys)[0] == 0
        entries = read_all(tmp_path / "metrics")
        failed: Counter[str | None] = Counter()
        errors: Counter[str | None] = Counter()
        tokens: defaultdict[str | None, int] = defaultdict(int)
        ends = {}
        for e in entries:
            if e.type is MetricType.TOOL_USE and not e.data["success"]:
                failed[e.session_id] += 1
                assert e.data["error_type"] == "ToolTimeout"
            elif e.type is MetricType.ERROR_OCCURRED:
                errors[e.session_id] += 1
            elif e.type is MetricType.TOKEN_USAGE:
                total = e.data["total_tokens"]
                assert isinstance(total, int)
                tokens[e.session_id] += total
            elif e.type is MetricType.SESSION_END:
                ends[e.session_id] = e.data["token_count"]
        assert sum(errors.values()) > 0
        assert failed == errors
        assert ends == {sid: tokens[sid] for sid in ends}
        assert len(ends) == 20
