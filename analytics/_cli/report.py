"""``analytics report``: summarize a directory, rendered by the report module."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._read.summary import summarize
from .._report import FORMATS, render
from .arguments import Progress, add_dir, add_filters, filters

ENGINES = ("python", "duckdb")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="summarize a directory",
        description="Summarize the entries of a directory: counts, tools, sessions,"
        " errors, tokens and a timeline.",
    )
    add_dir(report)
    add_filters(report)
    report.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    report.add_argument(
        "--engine",
        choices=ENGINES,
        default="python",
        help="duckdb: compute the report in SQL (pip install 'asyncio-jsonl-analytics[duckdb]')",
    )
    report.add_argument("--output", type=Path, help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    if args.engine == "duckdb":
        from .._read.duckdb_engine import summarize_duckdb

        summary = summarize_duckdb(args.dir, **filters(args))
    else:
        progress = Progress()
        summary = summarize(args.dir, progress=progress.show, workers=None, **filters(args))
        progress.done()
    text = render(summary, args.format)  # no entries: an empty report, not an error
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
