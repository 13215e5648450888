"""Check that .ci/lowest.txt pins every declared lower bound, and that they are installed.

Run by .ci/run with the python of the lowest-versions venv. Fails (exit 1, one line per
problem) if pyproject.toml declares a lower bound that lowest.txt does not pin to exactly
that version, or if the installed version differs from the pin.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Tools that only lint or type-check run in the main venv at their newest version.
NOT_RUN_HERE = {"mypy", "ruff", "types-aiofiles"}


def declared_bounds() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.extend(extra)
    bounds: dict[str, str] = {}
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*(?:>=\s*([^,;\s]+))?", requirement)
        assert match, requirement
        name, lower = match.group(1).lower(), match.group(2)
        if name in NOT_RUN_HERE or name == "asyncio-jsonl-analytics":
            continue
        if lower is None:
            bounds.setdefault(name, "")
        else:
            bounds[name] = lower
    return bounds


def pins() -> dict[str, str]:
    result = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            result[name.strip().lower()] = version.strip()
    return result


def main() -> int:
    problems = []
    pinned = pins()
    for name, lower in sorted(declared_bounds().items()):
        if not lower:
            problems.append(f"{name}: declared without a lower bound")
            continue
        pin = pinned.get(name)
        if pin is None or not (pin == lower or pin.startswith(lower + ".") or pin == lower + ".0"):
            problems.append(f"{name}: declared >={lower} but .ci/lowest.txt pins {pin}")
            continue
        installed = metadata.version(name)
        if installed != pin:
            problems.append(f"{name}: installed {installed}, pinned {pin}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
