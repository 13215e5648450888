"""``analytics report``: summarize a directory, rendered by the report module."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import anyio

from .._checkpoint import checkpoint_path, load_checkpoint
from .._read.files import resolve_metrics_dir
from .._read.summary import Summary, summarize
from .._report import FORMATS, render
from .._ship.archive import summarize_archive
from .._ship.report import summarize_central
from .._ship.target import parse_target
from .arguments import CliError, Progress, add_dir, add_filters, add_s3_options, filters

ENGINES = ("python", "duckdb", "clickhouse", "postgres")
CENTRAL = {"clickhouse": "clickhouse", "postgres": "postgresql"}
"""The engines that run the report on the server a shipper ships to (``--url``)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="summarize a directory",
        description="Summarize the entries of a directory: counts, tools, sessions,"
        " errors, tokens and a timeline.",
    )
    add_dir(report, optional=True, archives=True)
    add_filters(report)
    report.add_argument(
        "--format", choices=FORMATS, default="text", help="output format (default: text)"
    )
    report.add_argument(
        "--engine",
        choices=ENGINES,
        default="python",
        help="duckdb: compute the report in SQL (pip install 'asyncio-jsonl-analytics[duckdb]');"
        " clickhouse, postgres: on the server that `analytics ship` ships to (--url): the"
        " entries shipped from DIR, or with no DIR the whole table (every source)",
    )
    report.add_argument(
        "--url",
        metavar="URL",
        help="with --engine clickhouse/postgres: the URL given to `analytics ship --to`",
    )
    report.add_argument(
        "--source",
        metavar="ID",
        help="with s3://BUCKET/PREFIX: only the files archived from this directory (its"
        " source=ID); default: every source",
    )
    add_s3_options(report, required=False)
    report.add_argument("--output", type=Path, help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    if isinstance(args.dir, str):  # s3://BUCKET/PREFIX
        summary = archive_summary(args)
    elif args.source is not None or args.s3_endpoint is not None:
        raise CliError("--source and --s3-endpoint go with an s3://BUCKET/PREFIX archive")
    elif args.engine in CENTRAL:
        summary = central_summary(args)
    elif args.dir is None:  # a usage error, as argparse reports them
        print(
            "analytics report: error: the following arguments are required: dir"
            " (see analytics report --help)",
            file=sys.stderr,
        )
        return 2
    elif args.engine == "duckdb":
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


def archive_summary(args: argparse.Namespace) -> Summary:
    """The report of an S3 archive: the same numbers as the files it holds, read
    locally, by the Python or the DuckDB engine."""
    if args.engine in CENTRAL:
        raise CliError(
            f"--engine {args.engine} reads a central table, not an archive: use python or duckdb"
        )
    return summarize_archive(
        args.dir,
        engine=args.engine,
        source=args.source,
        endpoint_url=args.s3_endpoint,
        **filters(args),
    )


def central_summary(args: argparse.Namespace) -> Summary:
    """The report of what was shipped to ``--url``: from ``DIR`` (its checkpoint for
    that URL names its source), or from every source."""
    if not args.url:
        raise CliError(f"--engine {args.engine} needs --url (the URL given to analytics ship)")
    target = parse_target(args.url)
    if target.engine != CENTRAL[args.engine]:
        raise CliError(f"--engine {args.engine} does not match the URL's scheme ({target.engine})")
    source = None
    if args.dir is not None:
        directory = resolve_metrics_dir(args.dir)
        checkpoint = load_checkpoint(checkpoint_path(directory, target.sink_id))
        if checkpoint is None:
            raise CliError(
                f"{args.dir} has never been shipped to {target.display()} (no checkpoint);"
                " leave DIR out for the whole table"
            )
        source = checkpoint.source
    return anyio.run(partial(summarize_central, args.url, source=source, **filters(args)))
