"""The command line, one module per command.

``app`` builds the parser and runs a command; ``arguments`` holds the argument types
and the options several commands share; ``report``, ``export``, ``files``, ``tail`` and
``demo`` are the commands; ``simulator`` is the busy service the demo runs. Only the
command line prints: the library logs.
"""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
