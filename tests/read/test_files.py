"""Finding and selecting files: ours only, by the writer's naming rule, and chosen by
the entry-time bounds in their header or scanned from their lines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from analytics._read.files import ReadStats, data_files, named_files, scan_bounds, select_files
from analytics._read.filter import Filter

from ..helpers import T0, tool, write_entries_file


def _window(tmp_path: Path) -> dict[str, Path]:
    """Files named inside the window whose entries are inside or outside it."""
    metrics = tmp_path / "metrics"
    inside = [tool(T0 + timedelta(seconds=i), i) for i in range(3)]
    outside = [tool(T0 - timedelta(days=3, seconds=-i), i) for i in range(3)]
    return {
        "inside": write_entries_file(metrics, T0, inside, pid=1),
        "header_outside": write_entries_file(metrics, T0, outside, pid=2),
        "legacy_outside": write_entries_file(metrics, T0, outside, pid=3, kind="legacy"),
        "plain_outside": write_entries_file(metrics, T0, outside, pid=4, kind="plain"),
    }


def _chosen(metrics: Path, keep: Filter, *, scan: bool = False) -> tuple[set[Path], int]:
    stats = ReadStats()
    chosen = select_files(metrics, keep, stats, scan=scan)
    return {path for _, path, _ in chosen}, stats.files_skipped


def test_only_header_bounds_drop_files_by_default(tmp_path: Path) -> None:
    files = _window(tmp_path)
    chosen, skipped = _chosen(tmp_path / "metrics", Filter(since=T0 - timedelta(hours=1)))
    assert chosen == set(files.values()) - {files["header_outside"]}
    assert skipped == 1


def test_a_scan_learns_the_bounds_the_header_does_not_hold(tmp_path: Path) -> None:
    files = _window(tmp_path)
    keep = Filter(since=T0 - timedelta(hours=1))
    chosen, skipped = _chosen(tmp_path / "metrics", keep, scan=True)
    assert chosen == {files["inside"]}
    assert skipped == 3
    bounds = {path: b for _, path, b in select_files(tmp_path / "metrics", Filter(), ReadStats())}
    inside = bounds[files["inside"]]
    assert inside is not None
    assert inside.first == T0
    assert bounds[files["plain_outside"]] is None  # unknown without a scan
    assert scan_bounds(files["plain_outside"]) == bounds[files["header_outside"]]


def test_without_a_window_every_file_is_chosen(tmp_path: Path) -> None:
    files = _window(tmp_path)
    for scan in (False, True):
        assert _chosen(tmp_path / "metrics", Filter(session_id="s1"), scan=scan) == (
            set(files.values()),
            0,
        )


def test_the_prefix_chooses_whose_files(tmp_path: Path) -> None:
    files = _window(tmp_path)
    assert _chosen(tmp_path / "metrics", Filter(prefix="other")) == (set(), 0)
    assert set(data_files(tmp_path / "metrics")) == set(files.values())


def test_a_source_beside_its_complete_gz_is_left_out(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    gz = write_entries_file(metrics, T0, [tool(T0)])
    source = gz.with_name(gz.name.removesuffix(".gz"))
    source.write_bytes(b"")
    assert [path for _, path in named_files(metrics, "metrics")] == [gz]
