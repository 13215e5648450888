"""Design rules that a reviewer would otherwise have to check by eye."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "analytics"


def _package_modules() -> list[Path]:
    """Every module of the package, subpackages included."""
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


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
    for path in _package_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.AsyncFunctionDef):
                continue
            for call in ast.walk(node):
                if isinstance(call, ast.Call):
                    name = ast.unparse(call.func)
                    if name.startswith(BLOCKING_PREFIXES) or name.endswith(BLOCKING_METHODS):
                        offences.append(f"{_name(path)}:{call.lineno} {node.name}: {name}")
    assert offences == []


def test_the_library_never_prints() -> None:
    """Only the command line prints; the library logs through "analytics"."""
    offences = []
    for path in _package_modules():
        if path.parent.name == "_cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "print":
                offences.append(f"{_name(path)}:{node.lineno}")
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


def test_no_module_imports_another_modules_underscore_names() -> None:
    """What two modules share has a public (no leading underscore) name in a module of
    its own; importing a private module itself (``from . import _fileops``) is fine,
    reaching for a private name inside it is not."""
    offences = []
    for path in _package_modules():
        tree = ast.parse(path.read_text())
        modules: set[str] = set()  # names bound to our modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or 0) > 0:
                for alias in node.names:
                    if node.module is None:  # from . import _fileops as ops
                        modules.add(alias.asname or alias.name)
                    elif alias.name.startswith("_") and not alias.name.startswith("__"):
                        offences.append(f"{_name(path)}:{node.lineno} imports {alias.name}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analytics"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offences.append(f"{_name(path)}:{node.lineno} imports {alias.name}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offences.append(f"{_name(path)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert offences == []
