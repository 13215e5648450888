"""What compressing one rotated file costs, with each ``compressor``.

    python benchmarks/compress.py              # 5 files of 1 MiB, best of 5 each
    python benchmarks/compress.py --quick      # a smoke test: 1 file of 256 KiB
    python benchmarks/compress.py --out benchmarks/results/compress.json

The files are made by the writer itself (``MetricsWriter`` over ``JSONLWriter``,
``compress_old=False``): tool calls and token usage of 50 sessions, as a service writes
them. Each is then compressed by ``_fileops.compress_to``, the function the writer's
worker thread runs, with ``compressor="zlib"`` and ``compressor="isal"`` at the same
``compress_level``. Reported per compressor: the CPU time of the compressing thread
per MiB (``time.thread_time``, best of the repeats), the compression ratio, and the
ratios between the two, from this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from analytics import JSONLWriter, MetricsWriter, _fileops

COMPRESSORS: tuple[_fileops.Compressor, ...] = ("zlib", "isal")
TOOLS = ("read_file", "grep", "edit", "bash")


async def make_files(directory: Path, files: int, file_size: int) -> list[Path]:
    """Files of about ``file_size`` bytes, as the writer writes them."""
    async with JSONLWriter(
        directory, max_file_size=file_size, max_files=10**6, compress_old=False
    ) as writer:
        metrics = MetricsWriter(writer)
        i = 0
        while len(list(writer.metrics_dir.glob("*.jsonl"))) <= files:
            session = f"s{i % 50}"
            await metrics.track_tool_use(
                session,
                TOOLS[i % 4],
                i % 7 != 0,
                (i * 37) % 1000 / 10,
                parameters={"path": f"/src/mod{i % 300}.py", "pattern": "def x"},
            )
            if i % 5 == 0:
                await metrics.track_token_usage(
                    session, "claude", 100 + i % 900, 10 + i % 90, cost_usd=0.001 * (i % 7)
                )
            i += 1
    return sorted(writer.metrics_dir.glob("*.jsonl"))[:files]


def measure(
    paths: list[Path], compressor: _fileops.Compressor, level: int, repeats: int
) -> dict[str, float]:
    codec = _fileops.GzipCodec.of(compressor, level)
    cpu = raw = packed = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out.gz"
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                times = []
                for _ in range(repeats):
                    started = time.thread_time()
                    _fileops.compress_to(fd, out, codec, sync=False)
                    times.append(time.thread_time() - started)
            finally:
                os.close(fd)
            data = path.read_bytes()
            assert gzip.decompress(out.read_bytes()) == data  # standard gzip, every byte
            cpu += min(times)
            raw += len(data)
            packed += out.stat().st_size
    return {"cpu_ms_per_mib": cpu * 1e3 / (raw / 2**20), "ratio": raw / packed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--file-size", type=int, default=2**20, help="bytes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--level", type=int, default=6, help="compress_level (default 6)")
    parser.add_argument("--quick", action="store_true", help="1 file of 256 KiB, 2 repeats")
    parser.add_argument("--out", type=Path, help="write the raw results as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.files, args.file_size, args.repeats = 1, 256 * 1024, 2
    with tempfile.TemporaryDirectory() as directory:
        paths = asyncio.run(make_files(Path(directory), args.files, args.file_size))
        results = {c: measure(paths, c, args.level, args.repeats) for c in COMPRESSORS}
        mean_size = statistics.mean(p.stat().st_size for p in paths)
    print(
        f"{len(paths)} file(s) of {mean_size / 2**20:.2f} MiB written by the writer,"
        f" compress_level={args.level}, best of {args.repeats}\n"
    )
    print("| compressor | CPU ms per MiB | compression ratio |")
    print("|---|---|---|")
    for name, result in results.items():
        print(f"| {name} | {result['cpu_ms_per_mib']:.2f} | {result['ratio']:.2f} |")
    zlib, isal = results["zlib"], results["isal"]
    print(
        f"\nisal: {zlib['cpu_ms_per_mib'] / isal['cpu_ms_per_mib']:.1f}x less CPU than zlib,"
        f" files {(zlib['ratio'] / isal['ratio'] - 1) * 100:.1f} % larger"
    )
    if args.out:
        record: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
            },
            "files": len(paths),
            "file_size": mean_size,
            "level": args.level,
            "results": results,
        }
        args.out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
