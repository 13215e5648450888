"""Blocking primitives: compression in chunks."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from analytics import _fileops


class TestNamingAndCompression:
    @pytest.mark.parametrize("chunks", [0, 0.5, 1, 1.25, 3])
    def test_compress_to_round_trips_any_size(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: float
    ) -> None:
        """One chunk or several, a file ending exactly on a chunk boundary or not:
        one valid gzip member holding exactly the source bytes."""
        monkeypatch.setattr(_fileops, "CHUNK_SIZE", 4096)
        lines = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(2000))
        data = lines[: int(4096 * chunks)]
        source = tmp_path / "source.jsonl"
        source.write_bytes(data)
        fd = os.open(source, os.O_RDONLY)
        try:
            _fileops.compress_to(fd, tmp_path / "out.gz", 6, sync=False)
        finally:
            os.close(fd)
        packed = (tmp_path / "out.gz").read_bytes()
        assert gzip.decompress(packed) == data
        with gzip.open(tmp_path / "out.gz") as f:
            assert f.read() == data
