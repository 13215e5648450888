"""``analytics ship``: a directory's entries into ClickHouse or PostgreSQL, until
stopped (SIGINT/SIGTERM: after the batch in flight, exit status 0), or ``--once``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

import anyio

from .._ship.archive import Archiver
from .._ship.engine import open_engine
from .._ship.shipper import Shipper, ShipperStats
from .._ship.target import parse_target
from .arguments import CliError, add_dir, add_s3_options, count, run_until_stopped, seconds

# What a log record carries besides its message: left out of the JSON lines.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ship = commands.add_parser(
        "ship",
        help="ship a directory's entries to ClickHouse or PostgreSQL, exactly once after dedup",
        description="Ship every entry of a writer's directory into a central table"
        " (created if absent), at least once, so that the engine's dedup by entry id"
        " makes it exactly once; runs until interrupted (Ctrl-C or SIGTERM: after the"
        " batch in flight, exit status 0). Progress is kept in a checkpoint in the"
        " directory, one per target.",
    )
    add_dir(ship)
    ship.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="clickhouse://HOST:8123/DB?table=NAME or postgresql://USER@HOST:5432/DB?table=NAME",
    )
    ship.add_argument("--once", action="store_true", help="ship what is there now, then exit")
    ship.add_argument(
        "--give-up-after",
        type=seconds,
        default=300.0,
        metavar="DURATION",
        help="with --once: exit with status 1 when the server has failed for this long"
        " (default: 5m); without --once it retries until stopped",
    )
    ship.add_argument(
        "--print-ddl",
        action="store_true",
        help="print the statements that create the table, and exit (connects to nothing)",
    )
    ship.add_argument(
        "--source",
        help="the source column of this directory's rows (default: HOST/DIRECTORY-ID)",
    )
    ship.add_argument(
        "--archive",
        metavar="s3://BUCKET/PREFIX",
        help="also archive the completed files to S3, as analytics archive does",
    )
    add_s3_options(ship, required=False)
    ship.add_argument(
        "--batch-lines",
        type=count,
        default=20_000,
        help="the most lines per insert (default: 20000)",
    )


def log_handler() -> logging.Handler | None:
    """Off a terminal, one JSON object per log line, from INFO up."""
    if sys.stderr.isatty():
        return None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    return handler


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        document.update((k, v) for k, v in vars(record).items() if k not in _STANDARD)
        return json.dumps(document, default=str)


def run(args: argparse.Namespace) -> int:
    target = parse_target(args.to)
    if args.print_ddl:
        sys.stdout.write(open_engine(target).ddl().rstrip("\n") + "\n")
        return 0
    if args.s3_endpoint is not None and args.archive is None:
        raise CliError("--s3-endpoint goes with --archive s3://BUCKET/PREFIX")
    archiver = (
        Archiver(args.dir, args.archive, prefix=args.prefix, endpoint_url=args.s3_endpoint)
        if args.archive
        else None
    )
    shipper = Shipper(
        args.dir,
        target,
        source=args.source,
        prefix=args.prefix,
        batch_lines=args.batch_lines,
        archive=archiver,
    )
    return anyio.run(_ship, shipper, args.once, args.give_up_after)


async def _ship(shipper: Shipper, once: bool, give_up_after: float) -> int:
    async def work() -> None:
        if once:
            await shipper.ship_once(give_up_after=give_up_after)
        else:
            await shipper.run()

    await run_until_stopped(shipper, work, lambda: _status(shipper.stats()))
    stats = shipper.stats()
    if once or not sys.stderr.isatty():
        print(
            f"shipped {stats.entries_shipped:,} entries in {stats.batches:,} batches;"
            f" {stats.rejected_lines:,} lines rejected; lag {stats.lag_bytes:,} bytes",
            file=sys.stderr,
        )
        if shipper.archiver is not None:
            archived = shipper.archiver.stats()
            print(
                f"archived {archived.files_archived:,} files ({archived.bytes_archived:,}"
                f" bytes); {archived.conflicts:,} conflicts",
                file=sys.stderr,
            )
    return 0


def _status(stats: ShipperStats) -> str:
    age = stats.oldest_unshipped_age
    lag = (
        "caught up"
        if not stats.lag_bytes and age is None
        else (
            f"lag {stats.lag_bytes:,} bytes in {stats.lag_files} files"
            + (f", oldest {age:.1f}s" if age is not None else "")
        )
    )
    return f"shipped {stats.entries_shipped:,} entries; {lag}"
