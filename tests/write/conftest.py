"""Fixtures of the write-path tests."""

from __future__ import annotations

import pytest

from analytics import _fileops

from ..helpers import Failing


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Failing:
    """The write system call fails with ENOSPC while ``disk.on`` is set."""
    failing = Failing()
    monkeypatch.setattr(_fileops, "_os_write", failing)
    return failing
