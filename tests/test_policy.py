"""Pure decisions: file names, rotation splits, retention choices."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics._policy import (
    FileName,
    NameAllocator,
    format_name,
    parse_name,
    retention_candidates,
    split_for_rotation,
)


@pytest.fixture(autouse=True)
def _restore_the_name_clock() -> Iterator[None]:
    """Names are strictly increasing per process: a test that steps the clock 1000 s
    ahead would push every later writer's names (and time rotation) into the future."""
    saved = NameAllocator._last_us
    yield
    NameAllocator._last_us = saved


class TestNames:
    def test_names_in_the_same_instant_are_unique_and_increasing(self) -> None:
        allocator = NameAllocator("metrics", 42)
        frozen = time.time_ns()
        names = [allocator.next(now_ns=frozen).name for _ in range(1000)]
        assert len(set(names)) == 1000
        assert names == sorted(names)

    def test_a_clock_stepping_back_still_gives_later_names(self) -> None:
        allocator = NameAllocator("metrics", 42)
        late = allocator.next(now_ns=time.time_ns() + 10**12)
        early = allocator.next(now_ns=time.time_ns() - 10**12)
        assert early.name > late.name

    def test_two_writers_in_one_process_never_share_a_name(self) -> None:
        a, b = NameAllocator("metrics", 7), NameAllocator("metrics", 7)
        frozen = time.time_ns()
        names = {a.next(now_ns=frozen).name for _ in range(100)}
        names |= {b.next(now_ns=frozen).name for _ in range(100)}
        assert len(names) == 200

    def test_two_processes_with_the_same_clock_differ_by_pid_and_tag(self) -> None:
        frozen = time.time_ns()
        a = format_name("metrics", frozen, 100, "aaaaaaaa")
        b = format_name("metrics", frozen, 200, "aaaaaaaa")
        assert a != b

    def test_name_shape_is_prefixed_jsonl_and_parses_back(self) -> None:
        info = NameAllocator("metrics", 1234).next()
        assert info.name.startswith("metrics_")
        assert info.name.endswith(".jsonl")
        assert f"_p1234_{info.tag}" in info.name
        assert parse_name(info.name, "metrics") == info
        gz = parse_name(info.name + ".gz", "metrics")
        assert gz is not None
        assert gz.compressed
        assert gz.stem == info.name

    def test_creation_time_in_the_name_is_utc(self) -> None:
        name = format_name("metrics", 1_700_000_000_123_456_000, 1, "abcdef01")
        assert name == "metrics_20231114T221320.123456Z_p1_abcdef01.jsonl"
        info = parse_name(name, "metrics")
        assert info is not None
        assert info.created.isoformat() == "2023-11-14T22:13:20.123456+00:00"

    @given(st.lists(st.integers(min_value=0, max_value=2**62), min_size=2, max_size=30))
    def test_names_sort_as_their_times(self, times: list[int]) -> None:
        infos = [FileName(t // 1000 * 1000, 1, "abcdef01", "metrics", False) for t in times]
        by_name = sorted(infos, key=lambda f: f.name)
        assert [f.created_ns for f in by_name] == sorted(f.created_ns for f in infos)

    def test_foreign_names_are_not_ours(self) -> None:
        real = NameAllocator("metrics", 1).next().name
        for name in [
            "metrics.jsonl",
            "metrics_foo.jsonl",
            "notes.jsonl",
            real + ".bak",
            real + ".gz.tmp",
            "x" + real,
            real.replace("metrics_", "other_"),
        ]:
            assert parse_name(name, "metrics") is None, name


class TestSplitForRotation:
    @given(
        sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=40),
        start_size=st.integers(min_value=0, max_value=500),
        limit=st.integers(min_value=1, max_value=500),
    )
    def test_every_line_lands_once_and_files_stay_under_the_limit(
        self, sizes: list[int], start_size: int, limit: int
    ) -> None:
        lines = [b"x" * (n - 1) + b"\n" for n in sizes]
        size, done = start_size, 0
        files: list[list[int]] = [[]]
        while done < len(lines):
            fit = split_for_rotation(size, lines, done, limit)
            if fit == 0:
                assert size > 0, "an empty file must take at least one line"
                size = 0
                files.append([])
                continue
            files[-1].extend(len(line) for line in lines[done : done + fit])
            size += sum(len(line) for line in lines[done : done + fit])
            done += fit
        assert [n for f in files for n in f] == sizes  # each line once, in order
        for number, f in enumerate(files):
            already = start_size if number == 0 else 0
            alone_in_empty_file = already == 0 and len(f) == 1
            assert not f or already + sum(f) <= limit or alone_in_empty_file

    def test_oversized_line_goes_alone_into_an_empty_file(self) -> None:
        big = b"x" * 999 + b"\n"
        assert split_for_rotation(0, [big, b"a\n"], 0, 100) == 1
        assert split_for_rotation(10, [big], 0, 100) == 0


def _names(count: int, compressed_upto: int = 0) -> list[FileName]:
    return [
        FileName((1_700_000_000 + i) * 10**9, 1, "abcdef01", "metrics", i < compressed_upto)
        for i in range(count)
    ]


class TestRetention:
    def test_nothing_to_do_under_the_limit(self) -> None:
        excess, _ = retention_candidates(_names(3), 5)
        assert excess == 0

    def test_oldest_first_and_by_the_time_in_the_name(self) -> None:
        files = _names(6, compressed_upto=5)
        excess, groups = retention_candidates(list(reversed(files)), 4)
        assert excess == 2
        assert [g[0] for g in groups[:2]] == files[:2]

    def test_the_protected_file_is_never_a_candidate_but_counts(self) -> None:
        files = _names(4)
        excess, groups = retention_candidates(files, 3, protected=files[0])
        assert excess == 1
        assert all(files[0] not in g for g in groups)

    def test_a_gz_and_its_leftover_source_count_once(self) -> None:
        plain = _names(3)
        gz = FileName(plain[0].created_ns, 1, "abcdef01", "metrics", True)
        excess, groups = retention_candidates([*plain, gz], 3)
        assert excess == 0
        assert groups[0] == [plain[0], gz]
