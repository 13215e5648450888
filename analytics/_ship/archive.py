"""The archive: every completed ``.gz`` of a directory, uploaded unchanged to S3, once.

A long-term copy that outlives ``max_files``, and that DuckDB or any S3 reader can
query where it lies. One file at a time, one worker-thread hop per file:

    list (completed ``.gz`` not archived yet, oldest first)
      -> upload (``If-None-Match: *``: a retry never overwrites; a key already holding
         the same bytes counts as done, a different object is an error, left alone)
      -> checkpoint (the stem marked done, replaced atomically)

A ``.gz`` is complete when it has its name: the writer compresses into a temporary
name and links it to the final name only once it is whole. The checkpoint is an
ordinary sink checkpoint (``.ship-s3-<hash>.json``, each archived stem complete), so
the writer's retention guard keeps the files not archived yet exactly as it keeps the
files a shipper has not shipped (up to ``max_unshipped_bytes``, losses recorded).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Unpack

import anyio
import anyio.to_thread

from .. import _checkpoint as cp
from .. import _fileops as ops
from .._bounds import parse_bounds
from .._exceptions import (
    ShipFatalError,
    ShipRejectedError,
    ShipRetryableError,
)
from .._policy import FileName, parse_name
from .._read.filter import Filter, FilterKeywords
from .._read.summary import Summary, summarize
from .running import BackgroundService, Retries, metrics_dir_for, take_sink_lock
from .s3 import ArchiveTarget, S3Store, check_source, parse_archive_url

__all__ = ["Archiver", "ArchiverStats", "summarize_archive"]

logger = logging.getLogger("analytics")

"""Seconds before the first retry of an upload; doubles per failure, fully jittered."""


@dataclass
class ArchiverStats:
    """What an archiver has done, and what waits."""

    files_archived: int = 0
    """Files uploaded by this archiver (found already there included)."""
    bytes_archived: int = 0
    already_there: int = 0
    """Files whose upload had succeeded before (a retry, or a crash before the
    checkpoint): the same bytes were at the key, so nothing was sent again."""
    conflicts: int = 0
    """Files whose key holds a different object: left alone, logged as errors."""
    retries: int = 0
    pending_files: int = 0
    """Completed files not archived yet (at the last look)."""
    pending_bytes: int = 0
    lost_files: int = 0
    """Files retention deleted before they were archived (``max_unshipped_bytes``)."""
    running: bool = False
    failures_in_a_row: int = 0
    last_error: str | None = None


class Archiver(BackgroundService):
    """Archive the completed files of ``base_path`` (the writer's directory) to S3.

    ::

        async with Archiver("./data", to="s3://bucket/analytics"):
            ...  # archives in the background until the block ends

    Args:
        base_path: the directory given to ``JSONLWriter`` (or its ``metrics`` folder).
        to: ``s3://BUCKET/PREFIX``; each file goes to
            ``PREFIX/source=SOURCE/date=YYYY-MM-DD/NAME.jsonl.gz``.
        source: the ``source=`` part of the keys (letters, digits, ``.``, ``_``,
            ``-``); by default the directory's id (kept in the directory).
        prefix: the writer's ``filename_prefix``.
        endpoint_url: an S3-compatible server (``http://127.0.0.1:8333``); by default
            boto3's (AWS, or ``AWS_ENDPOINT_URL``). Credentials: boto3's usual chain.
        region: the bucket's region (default: boto3's, ``AWS_REGION``).
        poll_interval: how often a caught-up archiver looks for new files.
        max_retry_delay: the longest wait between retries of a failing upload.

    Raises:
        TargetError: ``to`` cannot be used.
        ValueError: a bad ``source`` or interval.
    """

    def __init__(
        self,
        base_path: str | os.PathLike[str],
        to: str | ArchiveTarget,
        *,
        source: str | None = None,
        prefix: str = "metrics",
        endpoint_url: str | None = None,
        region: str | None = None,
        poll_interval: float = 5.0,
        max_retry_delay: float = 30.0,
        sync: bool = True,
    ) -> None:
        self.target = (
            to
            if isinstance(to, ArchiveTarget)
            else parse_archive_url(to, endpoint_url=endpoint_url, region=region)
        )
        if source is not None:
            check_source(source)
        for name, number in (
            ("poll_interval", poll_interval),
            ("max_retry_delay", max_retry_delay),
        ):
            if not (isinstance(number, int | float) and math.isfinite(number) and number >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {number!r}")
        self._base_path = Path(base_path)
        self._source = source
        self._prefix = prefix
        self._poll = float(poll_interval)
        self._max_retry = float(max_retry_delay)
        self._sync = sync
        self._stats = ArchiverStats()
        self._store: S3Store | None = None
        self._checkpoint: cp.Checkpoint | None = None
        self._directory: Path | None = None
        self._lock_fd: int | None = None
        self._conflicts: set[str] = set()
        super().__init__()  # _stop, the background task group, _failure
        self._one_pass = anyio.Lock()
        self._give_up_after: float | None = None

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> None:
        """Take the archive's lock, load (or start) its checkpoint, and make the S3
        client. Nothing is sent yet.

        Raises:
            MetricsDirNotFoundError: the directory does not exist.
            ShipperLockedError: another archiver holds this archive's lock.
            MissingDependencyError: boto3 is not installed.
        """
        await anyio.to_thread.run_sync(self._open_blocking)

    async def aclose(self) -> None:
        """Release the lock (the checkpoint is saved after every file)."""
        await anyio.to_thread.run_sync(self._close_blocking)

    def stats(self) -> ArchiverStats:
        """A copy of the counters."""
        return ArchiverStats(**self._stats.__dict__)

    @property
    def checkpoint_file(self) -> Path:
        """Where the archive's checkpoint is (after :meth:`open`)."""
        assert self._directory is not None, "open() first"
        return cp.checkpoint_path(self._directory, self.target.sink_id)

    @property
    def source(self) -> str:
        """The ``source=`` part of this directory's keys (after :meth:`open`)."""
        assert self._checkpoint is not None, "open() first"
        return self._checkpoint.source

    # -- archiving -------------------------------------------------------------------

    async def archive_once(self, *, give_up_after: float | None = None) -> int:
        """Archive every completed file now; return how many were archived.

        Args:
            give_up_after: when uploads have failed for this many seconds in a row,
                raise the last error instead of retrying on (``None``: retry until
                :meth:`stop`). What was archived before stays recorded.

        Raises:
            ShipFatalError: S3 refuses us for good (credentials, bucket).
            ShipRetryableError: with ``give_up_after``, S3 kept failing.
        """
        self._give_up_after = give_up_after
        try:
            return await self._pass()
        finally:
            self._give_up_after = None

    async def run(self) -> None:
        """Archive until :meth:`stop` is called: each completed file within about
        ``poll_interval`` of its compression.

        Raises:
            ShipFatalError: S3 refuses us for good (logged first).
        """
        self._stats.running = True
        try:
            while not self._stop.is_set():
                await self._pass()
                await self._sleep(self._poll)
        except ShipFatalError as exc:
            self._stats.last_error = str(exc)
            logger.error("archiving to %s stopped: %s", self.target.display(), exc)
            raise
        finally:
            self._stats.running = False

    async def _pass(self) -> int:
        async with self._one_pass:
            todo = await anyio.to_thread.run_sync(self._todo)
            done = 0
            for name in todo:
                if self._stop.is_set():
                    break
                if await self._archive(name):
                    done += 1
            return done

    async def _archive(self, name: FileName) -> bool:
        """Upload one file until S3 has it (retrying); ``False`` if it cannot be (gone,
        a conflict) or the archiver was stopped while waiting to retry."""
        retries = Retries(self._stats, self._give_up_after, self._max_retry)
        while True:
            try:
                archived = await anyio.to_thread.run_sync(self._archive_blocking, name)
            except ShipRetryableError as exc:
                await self._sleep(retries.failed(exc, f"archiving {name.name}"))
                if self._stop.is_set():
                    return False
                continue
            retries.succeeded(f"archiving to {self.target.display()}")
            return archived

    # -- blocking parts (worker threads) ---------------------------------------------

    def _open_blocking(self) -> None:
        directory = metrics_dir_for(self._base_path, self._prefix)
        sink = self.target.sink_id
        fd = take_sink_lock(directory, sink, self.target.display(), "archiver")
        try:
            path = cp.checkpoint_path(directory, sink)
            checkpoint = cp.load_checkpoint(path)
            if checkpoint is None:
                source = self._source or cp.directory_id(directory)
                checkpoint = cp.Checkpoint(sink=self.target.display(), source=source)
                # Saved at once: from now on the retention guard keeps what is not
                # archived yet.
                cp.save_checkpoint(path, checkpoint, sync=self._sync)
            elif self._source is not None and self._source != checkpoint.source:
                raise ValueError(
                    f"{path} archives as source {checkpoint.source!r}, not {self._source!r}"
                )
            store = S3Store(self.target)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd, self._directory, self._checkpoint = fd, directory, checkpoint
        self._store = store
        self._stats.lost_files = len(checkpoint.lost)

    def _close_blocking(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _todo(self) -> list[FileName]:
        """The completed files not archived yet, oldest first; losses folded in and
        files gone since pruned from the checkpoint."""
        assert self._directory is not None
        assert self._checkpoint is not None
        ours, _ = ops.data_file_names(self._directory, self._prefix)
        present = {name.stem for name in ours}
        if self._fold_losses(present):
            cp.save_checkpoint(self.checkpoint_file, self._checkpoint, sync=self._sync)
        files = self._checkpoint.files
        todo = sorted(
            name
            for name in ours
            if name.compressed and name.stem not in files and name.stem not in self._conflicts
        )
        self._stats.pending_files = len(todo)
        self._stats.pending_bytes = sum(_size(self._directory / name.name) for name in todo)
        return todo

    def _fold_losses(self, present: set[str]) -> bool:
        """Fold in the losses the retention guard recorded, and prune the archived
        files that are gone. Whether the checkpoint changed."""
        assert self._directory is not None
        assert self._checkpoint is not None
        checkpoint = self._checkpoint
        changed = False
        known = {loss.stem for loss in checkpoint.lost}
        for loss in cp.read_losses(cp.losses_path(self._directory, self.target.sink_id)):
            if loss.stem not in known:
                known.add(loss.stem)
                checkpoint.lost.append(loss)
                self._stats.lost_files += 1
                changed = True
        for stem in [stem for stem in checkpoint.files if stem not in present]:
            del checkpoint.files[stem]  # archived, then deleted by retention: as it should
            changed = True
        return changed

    def _archive_blocking(self, name: FileName) -> bool:
        """Upload one file and record it. ``False`` if it is gone or in conflict."""
        assert self._directory is not None
        assert self._checkpoint is not None
        assert self._store is not None
        key = self.target.key(self._checkpoint.source, name)
        try:
            created, size = self._store.put_new(key, self._directory / name.name)
        except FileNotFoundError:
            return False  # deleted meanwhile (retention past the cap): recorded as lost
        except ShipRejectedError as exc:
            self._conflicts.add(name.stem)
            self._stats.conflicts += 1
            logger.error("%s not archived: %s", name.name, exc)
            return False
        checkpoint = self._checkpoint
        checkpoint.files[name.stem] = cp.FileProgress(0, complete=True)
        checkpoint.shipped += 1
        cp.save_checkpoint(self.checkpoint_file, checkpoint, sync=self._sync)
        self._stats.files_archived += 1
        self._stats.bytes_archived += size
        self._stats.pending_files = max(self._stats.pending_files - 1, 0)
        self._stats.pending_bytes = max(self._stats.pending_bytes - size, 0)
        if not created:
            self._stats.already_there += 1
        logger.info(
            "archived %s to %s",
            name.name,
            self.target.display(),
            extra={"key": key, "bytes": size, "already_there": not created},
        )
        return True


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# -- reading the archive back ---------------------------------------------------------


def summarize_archive(
    url: str,
    *,
    engine: Literal["python", "duckdb"] = "python",
    source: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    **filters: Unpack[FilterKeywords],
) -> Summary:
    """:func:`analytics.summarize` of what an archive holds (blocking).

    The archived files are fetched into a temporary directory and summarized there by
    ``engine``, so the numbers are those of the same files read locally. With
    ``since``/``until``, only the first bytes of each file are fetched first: files
    whose recorded entry-time bounds (in their gzip header) fall outside are skipped.

    Args:
        url: ``s3://BUCKET/PREFIX``, as given to the archiver.
        engine: ``"python"`` or ``"duckdb"``.
        source: only this directory's files (its ``source=``); default: every source.

    Raises:
        TargetError: ``url`` cannot be used.
        MissingDependencyError: boto3 (or DuckDB) is not installed.
        ShipFatalError, ShipRetryableError: S3 refused or could not be reached.
    """
    if engine not in ("python", "duckdb"):
        raise ValueError(f"unknown engine {engine!r}: python or duckdb")
    target = parse_archive_url(url, endpoint_url=endpoint_url, region=region)
    keep = Filter(**filters)
    store = S3Store(target)
    try:
        under = target.under(f"source={check_source(source)}/" if source else "source=")
        chosen: dict[str, str] = {}
        for key, _ in store.list(under):
            name = key.rsplit("/", 1)[-1]
            parsed = parse_name(name, keep.prefix)
            if parsed is None or not parsed.compressed:
                continue
            if keep.windowed and not keep.may_hold(parse_bounds(store.head_bytes(key, 64))):
                continue
            if name in chosen:  # two sources with one name (a pid and a random tag)
                logger.warning("%s is archived twice (%s, %s): read once", name, chosen[name], key)
                continue
            chosen[name] = key
        with tempfile.TemporaryDirectory(prefix="analytics-archive-") as scratch:
            folder = Path(scratch)
            for name, key in chosen.items():
                store.download(key, folder / name)
            if engine == "duckdb":
                from .._read.duckdb_engine import summarize_duckdb

                return summarize_duckdb(folder, **filters)
            return summarize(folder, **filters)
    finally:
        store.close()
