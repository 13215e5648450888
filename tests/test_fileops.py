"""Blocking primitives: compression in chunks, and opening a file to continue it."""

from __future__ import annotations

import gzip
import os
import sys
import zlib
from pathlib import Path

import pytest

from analytics import _fileops


class TestNamingAndCompression:
    @pytest.mark.parametrize("compressor", ["zlib", "isal"])
    @pytest.mark.parametrize("chunks", [0, 0.5, 1, 1.25, 3])
    def test_compress_to_round_trips_any_size(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        chunks: float,
        compressor: _fileops.Compressor,
    ) -> None:
        """One chunk or several, a file ending exactly on a chunk boundary or not, with
        either compressor: one valid gzip member holding exactly the source bytes."""
        monkeypatch.setattr(_fileops, "CHUNK_SIZE", 4096)
        lines = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(2000))
        data = lines[: int(4096 * chunks)]
        source = tmp_path / "source.jsonl"
        source.write_bytes(data)
        fd = os.open(source, os.O_RDONLY)
        try:
            codec = _fileops.GzipCodec.of(compressor, 6)
            _fileops.compress_to(fd, tmp_path / "out.gz", codec, sync=False)
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


class TestGzipCodec:
    def test_zlib_takes_the_level_as_it_is(self) -> None:
        assert [_fileops.GzipCodec.of("zlib", level).level for level in range(1, 10)] == list(
            range(1, 10)
        )
        assert _fileops.GzipCodec.of("zlib", 6).module is zlib

    def test_isal_levels_are_the_three_thirds_of_ours(self) -> None:
        levels = [_fileops.GzipCodec.of("isal", level).level for level in range(1, 10)]
        assert levels == [1, 1, 1, 2, 2, 2, 3, 3, 3]
        assert _fileops.GzipCodec.of("isal", 6).module.__name__ == "isal.isal_zlib"

    def test_the_isal_levels_do_differ(self, tmp_path: Path) -> None:
        """The level reaches ISA-L: its level 3 (ours 7-9) packs JSON lines smaller
        than its level 1 (ours 1-3)."""
        source = tmp_path / "source.jsonl"
        source.write_bytes(
            b"".join(
                b'{"n": %d, "tool": "t%d", "ms": %d.%d}\n' % (i, i % 7, i % 113, i % 10)
                for i in range(50_000)
            )
        )
        sizes = {}
        fd = os.open(source, os.O_RDONLY)
        try:
            for level in (1, 9):
                out = tmp_path / f"out{level}.gz"
                _fileops.compress_to(fd, out, _fileops.GzipCodec.of("isal", level), sync=False)
                sizes[level] = out.stat().st_size
                assert gzip.decompress(out.read_bytes()) == source.read_bytes()
        finally:
            os.close(fd)
        assert sizes[9] < sizes[1]

    def test_isal_not_installed_is_an_import_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setitem(sys.modules, "isal", None)
        with pytest.raises(ImportError):
            _fileops.GzipCodec.of("isal", 6)
        assert _fileops.GzipCodec.of("zlib", 6).module is zlib  # zlib needs nothing
