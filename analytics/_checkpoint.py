"""What a shipper has delivered from a directory, kept in that directory.

Shared by the shipper (which advances it) and the writer's retention guard (which
reads it to keep files nobody has shipped yet). One checkpoint per sink, beside the
data files, under names the writer and the readers never take for data. An S3 archive
is a sink like the others (``.ship-s3-<hash>.*``): its checkpoint marks each archived
file complete, so the guard keeps what is not archived yet by the same rule:

- ``.ship-<sink>.json``: the checkpoint (replaced atomically);
- ``.ship-<sink>.lock``: held (``flock``) by the one shipper of that sink;
- ``.ship-<sink>.rejects.jsonl``: lines the engine refused for good, with its message;
- ``.ship-<sink>.lost.jsonl``: files retention deleted before they were shipped, and
  how many lines of theirs were never shipped (appended by the writer).

A file is known by its *stem* (the ``.jsonl`` name, which its ``.gz`` keeps), and its
offset counts uncompressed bytes just past the last shipped newline, so it stays valid
when the file is compressed. Everything here is blocking: call it from a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import _fileops as ops
from ._policy import FileName

logger = logging.getLogger("analytics")

__all__ = [
    "CHECKPOINT_PREFIX",
    "Checkpoint",
    "FileProgress",
    "Loss",
    "RetentionGuard",
    "append_record",
    "checkpoint_path",
    "default_source",
    "directory_id",
    "load_checkpoint",
    "load_checkpoints",
    "lock_path",
    "losses_path",
    "now_iso",
    "read_losses",
    "rejects_path",
    "save_checkpoint",
]

CHECKPOINT_PREFIX = ".ship-"
_VERSION = 1
_ID_FILE = ".analytics-id"


def checkpoint_path(directory: Path, sink: str) -> Path:
    return directory / f"{CHECKPOINT_PREFIX}{sink}.json"


def lock_path(directory: Path, sink: str) -> Path:
    return directory / f"{CHECKPOINT_PREFIX}{sink}.lock"


def rejects_path(directory: Path, sink: str) -> Path:
    return directory / f"{CHECKPOINT_PREFIX}{sink}.rejects.jsonl"


def losses_path(directory: Path, sink: str) -> Path:
    return directory / f"{CHECKPOINT_PREFIX}{sink}.lost.jsonl"


@dataclass
class FileProgress:
    """How far one file (by stem) is shipped."""

    offset: int = 0
    """Uncompressed bytes shipped: just past the last shipped newline."""
    complete: bool = False
    """The file will not grow again and everything in it is shipped."""


@dataclass(frozen=True)
class Loss:
    """A file deleted by retention before it was (all) shipped."""

    stem: str
    lines: int
    """Whole lines of it that were never shipped."""
    at: str
    """When, as an ISO 8601 UTC time."""


@dataclass
class Checkpoint:
    """One sink's progress through one directory."""

    sink: str
    source: str
    files: dict[str, FileProgress] = field(default_factory=dict)
    shipped: int = 0
    """Entries shipped, over the checkpoint's whole life."""
    rejected: int = 0
    """Lines refused (by us, as not an entry, or by the engine), over its whole life."""
    lost: list[Loss] = field(default_factory=list)
    """Files retention deleted before they were shipped (folded in from the losses
    file)."""

    def to_json(self) -> bytes:
        files = {
            stem: [p.offset, p.complete] for stem, p in sorted(self.files.items())
        }  # compact: a busy directory has thousands of stems
        document = {
            "version": _VERSION,
            "sink": self.sink,
            "source": self.source,
            "shipped": self.shipped,
            "rejected": self.rejected,
            "files": files,
            "lost": [{"stem": x.stem, "lines": x.lines, "at": x.at} for x in self.lost],
        }
        return json.dumps(document, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: Path) -> Checkpoint:
        """Raises ``ValueError`` naming ``where`` if the file is not a checkpoint."""
        try:
            document = json.loads(data)
            if document.get("version") != _VERSION:
                raise ValueError(f"unknown version {document.get('version')!r}")
            return cls(
                sink=str(document["sink"]),
                source=str(document["source"]),
                files={
                    str(stem): FileProgress(int(offset), bool(complete))
                    for stem, (offset, complete) in document["files"].items()
                },
                shipped=int(document["shipped"]),
                rejected=int(document["rejected"]),
                lost=[
                    Loss(str(x["stem"]), int(x["lines"]), str(x["at"])) for x in document["lost"]
                ],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where} is not a shipper checkpoint: {exc}") from None


def load_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint at ``path``, or ``None`` if there is none yet.

    Raises:
        ValueError: the file exists but is not a checkpoint (never silently reset:
            that would ship everything again).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return Checkpoint.from_json(data, path)


def load_checkpoints(directory: Path) -> dict[str, Checkpoint]:
    """Every sink's checkpoint in ``directory``, by sink id; unreadable ones are left
    out (the retention guard must not stop the writer over a damaged checkpoint)."""
    found = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    for name in names:
        if not (name.startswith(CHECKPOINT_PREFIX) and name.endswith(".json")):
            continue
        try:
            checkpoint = load_checkpoint(directory / name)
        except (OSError, ValueError):
            continue
        if checkpoint is not None:
            found[name.removeprefix(CHECKPOINT_PREFIX).removesuffix(".json")] = checkpoint
    return found


def save_checkpoint(path: Path, checkpoint: Checkpoint, *, sync: bool = True) -> None:
    """Replace the checkpoint atomically: a temporary file, fsync, rename, fsync of the
    directory. A crash leaves the old checkpoint or the new one, never a mix."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        ops.write_all(fd, checkpoint.to_json())
        if sync:
            ops.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        ops.fsync_dir(path.parent)


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` (rejects, losses), synced."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        ops.write_all(fd, line)
        ops.fsync(fd)
    finally:
        os.close(fd)


def _loss(record: dict[str, Any]) -> Loss:
    return Loss(str(record["stem"]), int(record["lines"]), str(record["at"]))


def read_losses(path: Path) -> list[Loss]:
    """The losses recorded in ``path`` (whole lines only; none if it is missing)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    losses = []
    for line in data.split(b"\n"):
        try:
            record = json.loads(line)
            losses.append(_loss(record))
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line: written again, never half-counted
    return losses


def directory_id(directory: Path) -> str:
    """The directory's id, made once and kept in ``.analytics-id``: with the host name,
    it tells the central table which directory an entry came from."""
    path = directory / _ID_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    new = secrets.token_hex(8)
    tmp = path.with_name(f"{_ID_FILE}.{os.getpid()}.tmp")
    tmp.write_text(new + "\n")
    try:
        ops.link_no_replace(tmp, path)  # two shippers starting at once agree on one id
    except FileExistsError:
        ops.unlink(tmp)
        return path.read_text().strip()
    ops.fsync_dir(directory)
    return new


def default_source(directory: Path) -> str:
    """``<host>/<directory id>``."""
    return f"{socket.gethostname()}/{directory_id(directory)}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class RetentionGuard:
    """Keeps the files that retention would delete while a shipper has not shipped
    them, up to ``cap`` bytes of them (the newest); past the cap the oldest go, and
    for every sink that had not shipped it, the lines lost are recorded in that
    sink's losses file (the shipper folds them into its checkpoint) and logged.

    Without a checkpoint in the directory it keeps nothing: retention is as before.
    """

    def __init__(self, directory: Path, cap: int) -> None:
        self.directory = directory
        self.cap = cap
        self.checkpoints = load_checkpoints(directory)

    def unshipped(self, group: list[FileName]) -> list[str]:
        """The sinks that have not shipped all of a file (``group``: its names, the
        ``.jsonl`` and its ``.gz`` twin)."""
        if not self.checkpoints:
            return []
        compressed = any(name.compressed for name in group)
        size = None
        sinks = []
        for sink, checkpoint in self.checkpoints.items():
            progress = checkpoint.files.get(group[0].stem)
            if progress is not None and progress.complete:
                continue
            if not compressed and progress is not None:
                if size is None:
                    size = _whole_lines_size(self.directory / group[0].stem)
                if progress.offset >= size:
                    continue  # a .jsonl is never complete; all its lines are shipped
            sinks.append(sink)
        return sinks

    def protect(self, doomed: list[list[FileName]]) -> set[str]:
        """The stems of ``doomed`` (oldest first) to keep: the newest unshipped ones,
        while they total at most ``cap`` bytes."""
        keep: set[str] = set()
        kept = 0
        for group in reversed(doomed):
            if not self.unshipped(group):
                continue
            size = sum(_size(self.directory / name.name) for name in group)
            if kept + size > self.cap:
                break
            kept += size
            keep.add(group[0].stem)
        return keep

    def losses(self, group: list[FileName]) -> list[tuple[str, int]]:
        """``(sink, lines not shipped)`` of a file about to be deleted."""
        found = []
        for sink in self.unshipped(group):
            progress = self.checkpoints[sink].files.get(group[0].stem, FileProgress())
            found.append((sink, _lines_after(self.directory, group, progress.offset)))
        return found

    def record(self, group: list[FileName], losses: list[tuple[str, int]]) -> None:
        """After deleting ``group``: append each sink's loss and log it."""
        stem = group[0].stem
        for sink, lines in losses:
            append_record(
                losses_path(self.directory, sink), {"stem": stem, "lines": lines, "at": now_iso()}
            )
            logger.error(
                "retention deleted %s before it was shipped to %s: %d lines lost"
                " (max_unshipped_bytes=%d reached)",
                stem,
                self.checkpoints[sink].sink,
                lines,
                self.cap,
            )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _whole_lines_size(path: Path) -> int:
    """The size of a ``.jsonl`` without a torn tail."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            back = min(size, 1 << 20)
            f.seek(size - back)
            tail = f.read(back)
    except FileNotFoundError:
        return 0
    return size - back + tail.rfind(b"\n") + 1


def _lines_after(directory: Path, group: list[FileName], offset: int) -> int:
    """Whole lines of a file past ``offset`` (uncompressed), from its ``.jsonl`` if it
    is there, else its ``.gz`` (up to any damage)."""
    stem = group[0].stem
    lines = 0
    try:
        with open(directory / stem, "rb") as f:
            f.seek(offset)
            while chunk := f.read(ops.CHUNK_SIZE):
                lines += chunk.count(b"\n")
        return lines
    except FileNotFoundError:
        pass  # compressed (and removed) meanwhile, or compressed long ago
    try:
        for chunk in ops.gunzip(directory / f"{stem}.gz", skip=offset):
            lines += chunk.count(b"\n")
    except (OSError, EOFError, zlib.error):
        pass  # up to the damage
    return lines
