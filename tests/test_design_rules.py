"""Design rules that a reviewer would otherwise have to check by eye."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from analytics import MetricsWriter

PACKAGE = Path(__file__).parent.parent / "analytics"


def _package_modules() -> list[Path]:
    """Every module of the package, subpackages included."""
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


BLOCKING_NAMES = {"open"}
BLOCKING_PREFIXES = ("os.", "gzip.", "shutil.", "zlib.", "time.sleep", "fcntl.")
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


def _on_the_loop(function: ast.AsyncFunctionDef) -> list[ast.Call]:
    """The calls an ``async def`` makes on the event loop: not those it awaits (an
    ``await engine.open()`` is a coroutine), nor those in a plain function it defines
    (which it hands to a worker thread)."""
    calls: list[ast.Call] = []
    awaited: set[int] = set()
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Await) and isinstance(node.value, ast.Call):
            awaited.add(id(node.value))
        if isinstance(node, ast.Call) and id(node) not in awaited:
            calls.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return calls


def test_nothing_under_async_def_does_blocking_file_work() -> None:
    """The event loop is sacred: file work goes through a worker thread."""
    offences = []
    for path in _package_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.AsyncFunctionDef):
                continue
            for call in _on_the_loop(node):
                name = ast.unparse(call.func)
                if (
                    name in BLOCKING_NAMES
                    or name.startswith(BLOCKING_PREFIXES)
                    or name.endswith(BLOCKING_METHODS)
                ):
                    offences.append(f"{_name(path)}:{call.lineno} {node.name}: {name}")
    assert offences == []


def test_the_blocking_rule_sees_through_what_it_should() -> None:
    """What the rule above skips, and what it does not."""
    source = """
async def f(engine, path):
    await engine.open()
    data = open(path).read()
    def in_a_thread():
        os.close(3)
    await to_thread(lambda: path.stat())
    await engine.insert(path.read_bytes())
"""
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.AsyncFunctionDef)
    names = {ast.unparse(call.func) for call in _on_the_loop(function)}
    assert {"open", "path.read_bytes"} <= names
    assert not names & {"engine.open", "os.close", "path.stat", "engine.insert", "to_thread"}


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
    source = (PACKAGE / "_write" / "writer.py").read_text()
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


SHARED = {"_models", "_exceptions", "_config", "_policy", "_bounds", "_fileops", "_checkpoint"}
WINGS = {"_write", "_read", "_cli", "_report", "_ship", "_serve"}
MAY_NOT_IMPORT = {
    "_write": {"_read", "_cli", "_report", "_ship"},
    "_read": {"_write", "_cli", "_report", "_ship"},
    "_report": {"_write", "_cli", "_ship"},
    # The shipper reads files as the read path does, and never writes them.
    "_ship": {"_write", "_cli", "_report"},
    # The dashboard reads as the read path does and shows the report; it never writes.
    "_serve": {"_write", "_cli", "_ship"},
    **{shared: WINGS for shared in SHARED},
}


def _room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _rooms_imported(path: Path) -> set[str]:
    """The top-level rooms of the package that ``path`` imports from."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0 at the top, 1 in a wing
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            parts = (node.module or "").split(".")
            if parts[0] == "analytics" and len(parts) > 1:
                rooms.add(parts[1])
            continue
        if node.level == depth + 1:  # relative to the package root
            if node.module:
                rooms.add(node.module.split(".")[0])
            else:
                rooms.update(alias.name for alias in node.names)
    return rooms


def test_the_wings_depend_only_downwards() -> None:
    """The write and read paths never import each other, nor the report or the command
    line; the shared modules import no wing. (The report reads the read path's
    ``Summary``; the command line and the package door use everything.)"""
    offences = []
    for path in _package_modules():
        room = _room(path)
        for imported in _rooms_imported(path) & MAY_NOT_IMPORT.get(room, set()):
            offences.append(f"{_name(path)} imports {imported}")
    assert offences == []
    assert {_room(p) for p in _package_modules()} >= SHARED | WINGS  # the rooms exist


def _track_and_time_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(MetricsWriter, name))
        for name in dir(MetricsWriter)
        if name.startswith(("track_", "time_"))
    }


def test_track_and_time_methods_take_their_arguments_in_one_order() -> None:
    """Every ``track_*``/``time_*`` method: ``session_id`` first, then the subject and
    its details, then ``success``, then ``duration_ms``, then optional extras, then
    ``**kwargs`` (docs/usage.md states the rule)."""
    methods = _track_and_time_methods()
    assert len(methods) >= 12  # ten track_* and two time_*: the rule has something to hold
    offences = []
    for name, signature in sorted(methods.items()):
        params = list(signature.parameters.values())[1:]  # without self
        names = [p.name for p in params]
        if names[:1] != ["session_id"] or params[0].kind is not params[0].POSITIONAL_OR_KEYWORD:
            offences.append(f"{name}: session_id is not the first argument: {names}")
        if len(names) < 2 or names[1] in {"success", "duration_ms"}:
            offences.append(f"{name}: no subject after session_id: {names}")
        if {"success", "duration_ms"} <= set(names) and names.index("success") > names.index(
            "duration_ms"
        ):
            offences.append(f"{name}: duration_ms comes before success: {names}")
        if params[-1].kind is not params[-1].VAR_KEYWORD:
            offences.append(f"{name}: does not end with **kwargs: {names}")
        for param in params[1:]:
            if param.kind is param.KEYWORD_ONLY:
                offences.append(f"{name}: {param.name} is keyword-only")
    assert offences == []


TESTS = Path(__file__).parent
# tests/<folder>/ mirrors analytics/<wing>/.
TEST_FOLDERS = {
    "write": "_write",
    "read": "_read",
    "cli": "_cli",
    "ship": "_ship",
    "report": "_report",
    "serve": "_serve",
}
# Top-level test modules that are not named after one module: the package door
# (``analytics/__init__.py``) and the checks of the whole tree.
NOT_NAMED_AFTER_A_MODULE = {
    "test_public_api": "analytics/__init__.py: names, reprs, pickling, the version",
    "test_exports": "analytics/__init__.py: __all__ and the documented names",
    "test_design_rules": "the whole package: these rules",
    "test_docs_examples": "README.md and docs/*.md: every Python block runs",
}
# Wings being written now, whose modules may not have their tests yet.
PENDING: set[str] = set()


def _has_logic(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for node in tree.body
    )


def _module_tested_by(test: Path) -> Path | None:
    """The source module a test module is named after, by the convention:
    ``tests/<wing>/test_<module>[_<topic>].py`` for ``analytics/_<wing>/<module>.py``,
    ``tests/test_<module>[_<topic>].py`` for ``analytics/[_]<module>.py``."""
    rest = test.stem.removeprefix("test_")
    if test.parent == TESTS:
        candidates = [p for p in PACKAGE.glob("*.py") if not p.name.startswith("__")]
    else:
        candidates = list((PACKAGE / TEST_FOLDERS[test.parent.name]).glob("*.py"))
    # The longest name that fits: ``duckdb_engine`` before a module ``duckdb``.
    for source in sorted(candidates, key=lambda p: -len(p.stem)):
        name = source.stem.removeprefix("_")
        if rest == name or rest.startswith(name + "_"):
            return source
    return None


def _test_modules() -> list[Path]:
    return sorted(
        [
            *TESTS.glob("test_*.py"),
            *(p for f in TEST_FOLDERS for p in (TESTS / f).glob("test_*.py")),
        ]
    )


def test_each_test_module_is_named_after_the_module_it_tests() -> None:
    """A maintainer changing ``analytics/_write/storage.py`` runs
    ``tests/write/test_storage*.py``; a new test goes beside the module it exercises."""
    offences = []
    for test in _test_modules():
        if test.parent == TESTS and test.stem in NOT_NAMED_AFTER_A_MODULE:
            continue
        if test.parent.name == "ship":
            continue  # the shipping wing's tests are named as its modules land
        if _module_tested_by(test) is None:
            offences.append(str(test.relative_to(TESTS)))
    assert offences == []
    assert len(_test_modules()) > 40  # the rule has something to hold


def test_each_module_with_logic_has_a_test_module() -> None:
    """Every source module with a function or a class has at least one test module
    named after it (the shipping wing excepted while it is written)."""
    tested = {_module_tested_by(test) for test in _test_modules()}
    untested = [
        _name(path)
        for path in _package_modules()
        if _has_logic(path) and path not in tested and _room(path) not in PENDING
    ]
    assert untested == []
    # The door is tested too, by the modules named for it.
    assert all((TESTS / f"{stem}.py").exists() for stem in NOT_NAMED_AFTER_A_MODULE)


def test_no_test_module_borrows_from_another() -> None:
    """Shared helpers live in ``analytics.testing`` or ``tests/helpers.py``: a test
    module imports nothing from another test module."""
    offences = []
    for test in _test_modules():
        for node in ast.walk(ast.parse(test.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = (node.module or "").split(".")[-1]
                names = [alias.name for alias in node.names]
                if module.startswith("test_") or any(n.startswith("test_") for n in names):
                    offences.append(f"{test.relative_to(TESTS)}:{node.lineno}")
    assert offences == []
