"""What several commands share: argument types parsed as the library parses options,
the directory and filter options, one-line errors and progress on a terminal."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import anyio
from pydantic import ValidationError

from .._config import WriterConfig, parse_duration, parse_size
from .._exceptions import ShipError
from .._models import MetricEntry, MetricType
from .._read.filter import Filter, FilterKeywords
from .._ship.running import BackgroundService

N = TypeVar("N", int, float)


class CliError(Exception):
    """A problem to report in one line, with exit status 1."""


RELATIVE = re.compile(r"^\s*\d+(?:\.\d+)?\s*[A-Za-z]+\s*$")
"""A duration with a unit (``30m``): ``--since``/``--until`` then mean that long ago."""


def moment(text: str) -> datetime:
    """Parse ``--since``/``--until``: an ISO-8601 time (a naive one is taken as UTC),
    or a duration before now (``30m``, ``1h``, ``7d``)."""
    if RELATIVE.match(text):
        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return datetime.now(UTC) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time or a duration before now"
            " (for example 2026-11-23T10:00:00Z, 30m, 1h or 7d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def metric_type(text: str) -> MetricType:
    try:
        return MetricType(text)
    except ValueError:
        choices = ", ".join(t.value for t in MetricType)
        raise argparse.ArgumentTypeError(f"unknown type {text!r}; use one of {choices}") from None


def _positive(text: str, parse: Callable[[str], N], what: str) -> N:
    """``parse(text)``, refused with the library's message, and refused unless > 0."""
    try:
        number = parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a {what} must be positive")
    return number


def size(text: str) -> int:
    """A positive size, parsed (and refused) as the library does."""
    return _positive(text, parse_size, "size")


def seconds(text: str) -> float:
    """A positive duration, parsed (and refused) as the library does."""
    return _positive(text, parse_duration, "duration")


def count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return number


def positive_count(text: str) -> int:
    number = count(text)
    if number == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1")
    return number


def prefix(text: str) -> str:
    """A file name prefix, checked as ``WriterConfig.filename_prefix`` is."""
    try:
        WriterConfig(filename_prefix=text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file name prefix: letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        ) from None
    return text


def path_or_archive(text: str) -> Path | str:
    """A directory, or an archive's ``s3://BUCKET/PREFIX`` URL (kept as text: a
    ``Path`` would fold its ``//``)."""
    return text if text.startswith("s3://") else Path(text)


def add_dir(
    parser: argparse.ArgumentParser, *, optional: bool = False, archives: bool = False
) -> None:
    parser.add_argument(
        "dir",
        type=path_or_archive if archives else Path,
        nargs="?" if optional else None,
        help="the writer's base path, or its metrics directory"
        + (", or an archive's s3://BUCKET/PREFIX (see analytics archive)" if archives else ""),
    )
    parser.add_argument(
        "--prefix",
        type=prefix,
        default="metrics",
        help="the writer's filename_prefix (default: metrics)",
    )


def add_s3_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``--to s3://BUCKET/PREFIX`` and ``--s3-endpoint URL`` (shared with ``ship``)."""
    if required:
        parser.add_argument(
            "--to", required=True, metavar="s3://BUCKET/PREFIX", help="where to archive"
        )
    parser.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="an S3-compatible server, such as http://127.0.0.1:8333 (default: AWS, or"
        " AWS_ENDPOINT_URL)",
    )


def add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        type=moment,
        help="only entries at or after this time: ISO-8601 (UTC if no offset)"
        " or a duration before now such as 30m, 1h, 7d",
    )
    parser.add_argument(
        "--until", type=moment, help="only entries before this time (same forms as --since)"
    )
    add_types(parser)
    parser.add_argument("--session", help="only entries of this session id")


def add_types(parser: argparse.ArgumentParser) -> None:
    choices = ", ".join(t.value for t in MetricType)
    parser.add_argument(
        "--type",
        type=metric_type,
        action="append",
        dest="types",
        metavar="TYPE",
        help=f"only entries of this type (repeatable): {choices}",
    )


def filters(args: argparse.Namespace) -> FilterKeywords:
    """The reader's filter keywords, from the options of :func:`add_dir` and
    :func:`add_filters`, checked once (as every reader checks them) before any
    output."""
    keywords = FilterKeywords(
        since=args.since,
        until=args.until,
        types=args.types,
        session_id=args.session,
        prefix=args.prefix,
    )
    Filter(**keywords)
    return keywords


class Progress:
    """Counts entries on stderr, only when stderr is a terminal."""

    EVERY = 50_000

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.count = 0
        self.shown = 0

    def tick(self, entries: Iterable[MetricEntry]) -> Iterator[MetricEntry]:
        for e in entries:
            self.count += 1
            if self.count % self.EVERY == 0:
                self.show(self.count)
            yield e
        self.done()

    def show(self, count: int) -> None:
        self.count = count
        if self.enabled and count - self.shown >= self.EVERY:
            self.shown = count
            print(f"\r{count:,} entries read", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.enabled and self.shown:
            print(file=sys.stderr)


async def run_until_stopped(
    service: BackgroundService,
    work: Callable[[], Awaitable[object]],
    status: Callable[[], str],
) -> None:
    """Open ``service`` and await ``work()``, with SIGINT and SIGTERM asking the service
    to stop after the work in flight and, on a terminal, ``status()`` on one line of
    stderr every half second; then close it. A :class:`ShipError` of the work is
    raised once the service is closed."""
    line = StatusLine(status)
    failure: ShipError | None = None
    await service.open()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_stop_on_signals, service)
            tasks.start_soon(line.run)
            try:
                await work()
            except ShipError as exc:  # raised below, outside the task group
                failure = exc
            finally:
                tasks.cancel_scope.cancel()
    finally:
        line.done()
        await service.aclose()
    if failure is not None:
        raise failure


async def _stop_on_signals(service: BackgroundService) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            service.stop()
            return


class StatusLine:
    """One line on a terminal (stderr), rewritten every half second."""

    def __init__(self, status: Callable[[], str]) -> None:
        self.status = status
        self.enabled = sys.stderr.isatty()
        self.shown = False

    async def run(self) -> None:
        if not self.enabled:
            return
        while True:
            self.show()
            await anyio.sleep(0.5)

    def show(self) -> None:
        line = f"{time.strftime('%H:%M:%S')} {self.status()}"
        print(f"\r{line}\033[K", end="", file=sys.stderr, flush=True)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.show()
            print(file=sys.stderr)
