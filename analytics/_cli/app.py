"""The parser and :func:`main`: run one command, turn every failure into one line."""

from __future__ import annotations

import argparse
import gc
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from .. import __version__
from .._exceptions import AnalyticsError
from . import archive, demo, export, files, report, serve, ship, tail
from .arguments import CliError

DISTRIBUTION = "asyncio-jsonl-analytics"

DESCRIPTION = (
    "Summarize, follow, export, list and ship to a central engine the JSON Lines files"
    " that asyncio-jsonl-analytics writes, or run a demo that writes some."
)

COMMANDS = {
    "demo": demo,
    "report": report,
    "tail": tail,
    "export": export,
    "files": files,
    "ship": ship,
    "archive": archive,
    "serve": serve,
}
"""Each command's module: ``add_parser(commands)`` and ``run(args) -> exit status``."""


LONG_RUNNING = {"demo", "ship", "archive"}
"""Commands that run on, with libraries that make cycles: the collector stays on."""


class Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr (exit status 2), never the usage block."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def version() -> str:
    if __version__ == "unknown":
        return f"{DISTRIBUTION} (version unknown: not installed)"
    return f"{DISTRIBUTION} {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The parser of :func:`main`: every argument has plain-text help."""
    parser = Parser(prog="analytics", description=DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=version(), help="print the version and exit"
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (analytics COMMAND --help tells more)",
    )
    for module in COMMANDS.values():
        module.add_parser(commands)
    return parser


def one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        reason = exc.strerror or type(exc).__name__
        return f"{reason}: {exc.filename}"
    if isinstance(exc, (CliError, ValueError, ImportError, AnalyticsError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Bad arguments raise ``SystemExit(2)`` after one line on stderr, as argparse does.
    Nothing the command changes in the process (the garbage collector, logging)
    outlives the call.
    """
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    handler = getattr(command, "log_handler", lambda: None)()
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("analytics: %(levelname)s: %(message)s"))
        handler.setLevel(logging.WARNING)
    logger = logging.getLogger("analytics")
    logger.addHandler(handler)
    level = logger.level
    if handler.level < logging.WARNING:
        logger.setLevel(handler.level)
    collecting = gc.isenabled()
    run: Callable[[argparse.Namespace], int] = command.run
    try:
        if args.command not in LONG_RUNNING:
            # A short-lived process that builds millions of small acyclic objects: the
            # cyclic collector would only walk them over and over (it costs a third of
            # the reading time). Reference counting still frees every entry.
            gc.disable()
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        quiet_stdout()  # the reader went away (| head): nothing more to say
        return 141
    except Exception as exc:  # anything else: one line, never a traceback
        text = " ".join(one_line(exc).split())
        print(f"analytics: error: {text}", file=sys.stderr)
        return 1
    finally:
        if collecting:
            gc.enable()
        logger.removeHandler(handler)
        logger.setLevel(level)


def quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass
