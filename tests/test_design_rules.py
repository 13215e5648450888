"""Design rules that a reviewer would otherwise have to check by eye."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "analytics"

BLOCKING_PREFIXES = ("os.", "open", "gzip.", "shutil.", "zlib.", "time.sleep", "fcntl.")
BLOCKING_METHODS = (
    ".iterdir",
    ".stat",
    ".exists",
    ".read_bytes",
    ".write_bytes",
    ".read_text",
    ".write_text",
    ".mkdir",
    ".unlink",
    ".open",
    ".is_file",
    ".is_dir",
)


def test_nothing_under_async_def_does_blocking_file_work() -> None:
    """The event loop is sacred: file work goes through a worker thread."""
    offences = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.AsyncFunctionDef):
                continue
            for call in ast.walk(node):
                if isinstance(call, ast.Call):
                    name = ast.unparse(call.func)
                    if name.startswith(BLOCKING_PREFIXES) or name.endswith(BLOCKING_METHODS):
                        offences.append(f"{path.name}:{call.lineno} {node.name}: {name}")
    assert offences == []


def test_the_library_never_prints() -> None:
    """Only the command line prints; the library logs through "analytics"."""
    offences = []
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "print":
                offences.append(f"{path.name}:{node.lineno}")
    assert offences == []


def test_constructors_do_no_io() -> None:
    """JSONLWriter.__init__ and its setup only store configuration."""
    source = (PACKAGE / "_writer.py").read_text()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in {"__init__", "_setup"}:
            for call in ast.walk(node):
                if isinstance(call, ast.Call):
                    name = ast.unparse(call.func)
                    assert not name.startswith(BLOCKING_PREFIXES), name
                    assert not name.endswith(BLOCKING_METHODS), name
