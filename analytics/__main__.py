"""The command line: ``python -m analytics demo``."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ._config import parse_size
from ._facade import MetricsWriter
from ._reader import scan_directory
from ._writer import JSONLWriter

_TOOLS = ("read_file", "grep", "edit", "bash", "web_search", "list_dir")
_MODELS = ("small-model", "large-model")


async def _session(metrics: MetricsWriter, number: int, until: float, rng: random.Random) -> None:
    session_id = f"demo-session-{number:04d}"
    user_id = f"user-{number % 7}"
    started = time.monotonic()
    await metrics.track_session_start(session_id, user_id=user_id, model=rng.choice(_MODELS))
    tokens = 0
    while time.monotonic() < until:
        tool = rng.choice(_TOOLS)
        async with metrics.time_tool(session_id, tool, argument="x" * rng.randint(10, 120)):
            await asyncio.sleep(rng.uniform(0.0, 0.004))
        if rng.random() < 0.2:
            used_in, used_out = rng.randint(200, 4000), rng.randint(50, 800)
            tokens += used_in + used_out
            await metrics.track_token_usage(session_id, rng.choice(_MODELS), used_in, used_out)
        if rng.random() < 0.02:
            await metrics.track_error(session_id, "ToolTimeout", f"{tool} took too long")
    await metrics.track_session_end(
        session_id,
        user_id=user_id,
        duration_seconds=round(time.monotonic() - started, 3),
        token_count=tokens,
    )


async def _demo(directory: Path, seconds: float, sessions: int, max_file_size: int) -> int:
    rng = random.Random(2026)
    until = time.monotonic() + seconds
    async with JSONLWriter(
        directory, max_file_size=max_file_size, max_files=1000, flush_interval=0.25
    ) as writer:
        metrics = MetricsWriter(writer)
        await asyncio.gather(*(_session(metrics, n, until, rng) for n in range(sessions)))
    stats = writer.stats()
    scan = await asyncio.to_thread(scan_directory, writer.metrics_dir)
    files = sorted(p for p in writer.metrics_dir.iterdir() if p.is_file())
    compressed = [p for p in files if p.name.endswith(".jsonl.gz")]
    plain = [p for p in files if p.name.endswith(".jsonl")]
    total_bytes = sum(p.stat().st_size for p in files)
    print(f"Simulated {sessions} concurrent sessions for {seconds:g}s into {writer.metrics_dir}")
    print(f"  entries written : {stats.entries_written:,}")
    print(f"  entries on disk : {len(scan.entries):,} (read back, {scan.bad_lines} bad lines)")
    print(f"  bytes written   : {stats.bytes_written:,} uncompressed")
    print(
        f"  files           : {len(files)} ({len(compressed)} compressed .jsonl.gz,"
        f" {len(plain)} .jsonl)"
    )
    print(f"  bytes on disk   : {total_bytes:,}")
    print(f"  rotations       : {stats.rotations}, compressions: {stats.compressions}")
    lost = stats.entries_written - len(scan.entries)
    print("  lost            : none" if lost == 0 else f"  lost            : {lost}")
    return 0 if lost == 0 else 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="simulate a busy asyncio service writing analytics, then summarize"
    )
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("analytics-demo"),
        help="where to write (default: ./analytics-demo)",
    )
    demo.add_argument("--seconds", type=float, default=3.0, help="how long to run (default: 3)")
    demo.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default: 50)")
    demo.add_argument(
        "--max-file-size",
        type=parse_size,
        default="256 KiB",
        help="rotate at this size (default: 256 KiB)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.seconds <= 0 or args.sessions <= 0:
            parser.error("--seconds and --sessions must be positive")
        try:
            return asyncio.run(_demo(args.dir, args.seconds, args.sessions, args.max_file_size))
        except OSError as exc:
            print(f"analytics: error: {exc}", file=sys.stderr)
            return 1
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
