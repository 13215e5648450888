"""``analytics archive``: a directory's completed files to S3, each once, unchanged;
until stopped (SIGINT/SIGTERM: after the upload in flight, exit status 0), or
``--once``."""

from __future__ import annotations

import argparse
import sys

import anyio

from .._ship.archive import Archiver, ArchiverStats
from .arguments import add_dir, add_s3_options, run_until_stopped, seconds
from .ship import log_handler as log_handler  # the same log lines as ``ship``


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    archive = commands.add_parser(
        "archive",
        help="upload a directory's completed files to S3, each once, unchanged",
        description="Upload every completed (compressed) file of a writer's directory"
        " to S3 under PREFIX/source=ID/date=YYYY-MM-DD/NAME.jsonl.gz, unchanged, with a"
        " conditional put so that nothing is ever overwritten; runs until interrupted"
        " (Ctrl-C or SIGTERM: after the upload in flight, exit status 0). Progress is"
        " kept in a checkpoint in the directory, and the writer's retention keeps the"
        " files not archived yet (up to max_unshipped_bytes). Credentials: the usual"
        " AWS_* variables or AWS_PROFILE.",
    )
    add_dir(archive)
    add_s3_options(archive, required=True)
    archive.add_argument("--once", action="store_true", help="archive what is there, then exit")
    archive.add_argument(
        "--give-up-after",
        type=seconds,
        default=300.0,
        metavar="DURATION",
        help="with --once: exit with status 1 when S3 has failed for this long (default:"
        " 5m); without --once it retries until stopped",
    )
    archive.add_argument(
        "--source",
        help="the source=ID part of the keys (default: the directory's id)",
    )
    archive.add_argument(
        "--poll-interval",
        type=seconds,
        default=5.0,
        metavar="DURATION",
        help="how often to look for newly completed files (default: 5s)",
    )


def run(args: argparse.Namespace) -> int:
    archiver = Archiver(
        args.dir,
        args.to,
        source=args.source,
        prefix=args.prefix,
        endpoint_url=args.s3_endpoint,
        poll_interval=args.poll_interval,
    )
    return anyio.run(_archive, archiver, args.once, args.give_up_after)


async def _archive(archiver: Archiver, once: bool, give_up_after: float) -> int:
    async def work() -> None:
        if once:
            await archiver.archive_once(give_up_after=give_up_after)
        else:
            await archiver.run()

    await run_until_stopped(archiver, work, lambda: _status(archiver.stats()))
    stats = archiver.stats()
    if once or not sys.stderr.isatty():
        print(
            f"archived {stats.files_archived:,} files ({stats.bytes_archived:,} bytes,"
            f" {stats.already_there:,} already there); {stats.conflicts:,} conflicts;"
            f" {stats.pending_files:,} files waiting",
            file=sys.stderr,
        )
    return 1 if once and stats.conflicts else 0


def _status(stats: ArchiverStats) -> str:
    waiting = (
        "caught up"
        if not stats.pending_files
        else f"{stats.pending_files} files ({stats.pending_bytes:,} bytes) waiting"
    )
    return f"archived {stats.files_archived:,} files; {waiting}"
