"""``analytics export``: a filtered, merged, chronological copy in JSON Lines, JSON,
CSV or Parquet."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from .._models import MetricEntry
from .._read.files import resolve_metrics_dir
from .._read.reader import iter_entries
from .arguments import CliError, Progress, add_dir, add_filters, filters

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
FORMATS = ("jsonl", "json", "csv", "parquet")
CSV_COLUMNS = ["id", "timestamp", "type", "session_id", "user_id", "data", "metadata"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser(
        "export",
        help="write a filtered, merged, chronological copy",
        description="Write a filtered, merged, chronological copy of the entries. The"
        " format comes from the extension of OUT (.jsonl, .ndjson, .json, .csv,"
        " .parquet) or from --format.",
    )
    add_dir(export)
    export.add_argument("out", type=Path, help="the file to write (.jsonl, .json, .csv, .parquet)")
    export.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="the output format (default: from the extension of OUT); parquet needs"
        " DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'",
    )
    add_filters(export)


def output_format(out: Path, given: str | None) -> str:
    """The format of ``out``: from its extension, which must agree with ``given``."""
    implied = EXTENSIONS.get(out.suffix.lower())
    if given is None:
        if implied is None:
            known = ", ".join(EXTENSIONS)
            raise CliError(
                f"cannot tell the format of {out} from its extension: use one of {known},"
                " or give --format"
            )
        return implied
    if implied is not None and implied != given:
        raise CliError(f"{out} looks like {implied}, but --format is {given}")
    return given


def run(args: argparse.Namespace) -> int:
    fmt = output_format(args.out, args.format)
    resolve_metrics_dir(args.dir)  # a missing directory is an error before any output
    if fmt == "parquet":
        count = export_parquet(args)
    else:
        try:
            with open(args.out, "w", encoding="utf-8", newline="") as out:
                entries = Progress().tick(iter_entries(args.dir, **filters(args)))
                count = WRITERS[fmt](entries, out)
        except BaseException:
            if args.out.is_file():
                args.out.unlink()
            raise
    print(f"exported {count:,} entries to {args.out}", file=sys.stderr)
    return 0


def write_csv(entries: Iterable[MetricEntry], out: IO[str]) -> int:
    """One row per entry; ``data`` and ``metadata`` as JSON text. Returns the count."""
    count = 0
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = e.to_dict()
        row["data"] = json.dumps(row["data"])
        row["metadata"] = json.dumps(row["metadata"])
        writer.writerow([row[c] for c in CSV_COLUMNS])
        count += 1
    return count


def write_json(entries: Iterable[MetricEntry], out: IO[str]) -> int:
    """One JSON array, an entry per line. Returns the count."""
    count = 0
    out.write("[")
    for e in entries:
        out.write(",\n" if count else "\n")
        out.write(e.to_json_line().decode().rstrip("\n"))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_jsonl(entries: Iterable[MetricEntry], out: IO[str]) -> int:
    """The entries' own lines. Returns the count."""
    count = 0
    for e in entries:
        out.write(e.to_json_line().decode())
        count += 1
    return count


WRITERS = {"csv": write_csv, "json": write_json, "jsonl": write_jsonl}


def export_parquet(args: argparse.Namespace) -> int:
    """The merged, filtered entries go to a JSON Lines file next to the output, which
    DuckDB then turns into Parquet. Returns the count."""
    try:
        import duckdb  # noqa: F401 - fail before reading anything

        from .._read.duckdb_engine import write_parquet
    except ModuleNotFoundError:
        raise CliError(
            "parquet export needs DuckDB: pip install 'asyncio-jsonl-analytics[duckdb]'"
        ) from None
    staging = args.out.with_name(args.out.name + ".jsonl.tmp")
    count = 0
    try:
        with open(staging, "wb") as out:
            for e in Progress().tick(iter_entries(args.dir, **filters(args))):
                out.write(e.to_json_line())
                count += 1
        write_parquet(staging, args.out)
    finally:
        staging.unlink(missing_ok=True)
    return count
