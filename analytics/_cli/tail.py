"""``analytics tail``: the last entries, and with ``--follow`` every new one, exactly
once, until a signal asks for a clean stop."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from .._models import MetricEntry
from .._read.tail import DirectoryTail
from .arguments import add_dir, add_types, count, seconds


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tail = commands.add_parser(
        "tail",
        help="print the last entries, and with --follow the new ones as they are written",
        description="Print the last entries as JSON lines; with --follow, keep printing"
        " new entries as they are written, each exactly once, across rotations and"
        " compressions, until interrupted (Ctrl-C or SIGTERM, exit status 0).",
    )
    add_dir(tail)
    tail.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new entries until stopped"
    )
    add_types(tail)
    tail.add_argument(
        "--lines",
        "-n",
        type=count,
        default=10,
        help="how many existing entries to print first (default: 10)",
    )
    tail.add_argument(
        "--interval",
        type=seconds,
        default=0.25,
        help="with --follow, how often to look for new entries (default: 0.25s)",
    )
    tail.add_argument(
        "--max-seconds",
        type=seconds,
        default=None,
        help="with --follow, stop after this long (default: never)",
    )


def run(args: argparse.Namespace) -> int:
    with StopSignals(args.follow) as stop:  # from the start: a stop while reading is kept too
        tail = DirectoryTail(args.dir, prefix=args.prefix, types=args.types)
        show(tail.last(args.lines))
        if not args.follow:
            return 0
        deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
        while not stop.requested:
            show(tail.poll())
            pause = args.interval
            if deadline is not None:
                pause = min(pause, deadline - time.monotonic())
                if pause <= 0:
                    break
            stop.sleep(pause)
        show(tail.poll())  # what was written until the stop
    return 0


def show(entries: Iterable[MetricEntry]) -> None:
    sys.stdout.writelines(e.to_json_line().decode() for e in entries)
    sys.stdout.flush()


class StopSignals:
    """While following: SIGINT and SIGTERM ask for a clean stop (a last poll, then
    exit status 0) instead of killing the process between a read and its printing.
    The previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requested = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if self.enabled and threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self.previous[number] = signal.signal(number, self.request)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def request(self, number: int, frame: object) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.requested and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
