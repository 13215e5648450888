"""Blocking primitives: compression in chunks, and opening a file to continue it."""

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


class TestOpenAppend:
    def test_a_file_removed_between_the_open_and_the_lock_is_not_taken(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another process compressing the file holds its lock until the source is gone;
        the lock that then succeeds is on a file with no name: not one to continue."""
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"{}\n")
        real_lock = _fileops.lock_exclusive

        def compressed_meanwhile(fd: int, *, wait: bool = True) -> bool:
            path.unlink()
            return real_lock(fd, wait=wait)

        monkeypatch.setattr(_fileops, "lock_exclusive", compressed_meanwhile)
        assert _fileops.open_append(path) is None

    def test_an_unlocked_file_is_taken_and_a_locked_one_is_not(self, tmp_path: Path) -> None:
        path = tmp_path / "a.jsonl"
        path.write_bytes(b"{}\n")
        fd = _fileops.open_append(path)
        assert fd is not None
        try:
            assert _fileops.open_append(path) is None  # held by the first
            os.write(fd, b"[]\n")
            assert path.read_bytes() == b"{}\n[]\n"
        finally:
            os.close(fd)
