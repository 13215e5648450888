"""The blocking shell: one directory of JSON Lines files, driven from worker threads.

Three parts, one concern each: :class:`Storage` owns the active file (writes, size
and time rotation, close); :func:`remove_leftovers` is the start-up repair of what an
interrupted process left; :class:`Archive` owns the closed files (listing ours,
counting them for ``stats()``, compression, retention). ``Storage`` is the one door:
its methods are plain blocking calls; the async
writer runs each batch through exactly one of them per thread hop, and never runs two
``write`` calls at once. Compression and retention may run in another thread at the
same time: advisory ``flock`` locks, not shared memory, keep them apart, which is also
what keeps several processes on one directory apart.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import _fileops as ops
from .._bounds import EntrySpan, Span, TimeBounds
from .._checkpoint import RetentionGuard
from .._config import WriterConfig
from .._policy import (
    FileName,
    NameAllocator,
    expired_groups,
    parse_name,
    retention_candidates,
    rotation_bucket,
    split_for_rotation,
)

__all__ = ["Archive", "CompressJob", "OpenOutcome", "Storage", "WriteOutcome", "remove_leftovers"]

logger = logging.getLogger("analytics")

_TMP_SUFFIX = ".gz.tmp"
_MAX_NAME_ATTEMPTS = 100


@dataclass
class CompressJob:
    """A closed file waiting to be compressed.

    ``fd`` holds the file's lock from the moment it stopped being active, so no other
    process can delete, compress or continue it in between. ``None`` means "lock it
    by path first" (a retry, or a file found at start).
    """

    path: Path
    fd: int | None = None
    bounds: TimeBounds | None = None
    """The entries' time span, known only for a file this writer made and held since
    (a fresh job): it goes into the ``.gz`` header."""


@dataclass
class WriteOutcome:
    """What one ``Storage.write`` call achieved."""

    written: int = 0
    """How many of the given lines are now in files (always a prefix of the batch)."""
    bytes_written: int = 0
    rotated: list[CompressJob] = field(default_factory=list)
    """Files closed by rotation that are waiting for compression."""
    rotations: int = 0
    deleted: int = 0
    error: OSError | None = None
    """Why the rest of the batch was not written; ``None`` if all of it was."""
    rotate_error: OSError | None = None
    """Why a time rotation failed (the file stays active, the rotation is retried):
    at a boundary, after the whole batch was written; or the replacement of a
    :attr:`Storage.stale` file, before it."""


@dataclass
class OpenOutcome:
    """What ``Storage.open`` found and repaired."""

    continued: bool = False
    to_compress: list[CompressJob] = field(default_factory=list)
    bytes_cut: int = 0


class Archive:
    """The closed files of one writer's directory. Blocking; call from worker threads.

    Owns: listing our files (warning once of strangers named like them), counting
    them for ``stats()``, compressing rotated files, and retention (``max_files``,
    ``max_age``). It never writes to the active file; retention is told which file
    that is, and never deletes it.
    """

    def __init__(self, directory: Path, config: WriterConfig) -> None:
        self.directory = directory
        self.config = config
        self.sync = config.fsync != "never"
        self.codec = ops.GzipCodec.of(config.compressor, config.compress_level)
        self.strangers: set[str] = set()  # non-regular files named like ours, warned of
        self.gz_sizes: dict[str, int] = {}  # a .gz file never changes once named
        self.files = 0  # our files in the directory, at the last scan
        self.files_bytes = 0  # their total size, at the last scan, without the active
        # file (its growth since is added by the caller)

    def our_files(self) -> list[FileName]:
        """Our files in the directory (all processes); strangers are warned of once."""
        ours, strangers = ops.data_file_names(self.directory, self.config.filename_prefix)
        for name in strangers:
            if name not in self.strangers:
                self.strangers.add(name)
                logger.warning(
                    "%s in %s is named like a data file but is not a regular file;"
                    " ignored (never read, counted or deleted)",
                    name,
                    self.directory,
                )
        return ours

    def compress(self, job: CompressJob) -> bool:
        """gzip a closed file to ``<name>.gz``, then remove it.

        The gzip stream goes to ``<name>.gz.tmp``; only a complete, synced file gets
        the final name, and only then is the source removed. At every instant the
        lines are in the source, in the final ``.gz``, or in both.

        Returns:
            ``True`` if compressed, ``False`` if skipped (the file is gone or another
            process holds it).

        Raises:
            OSError: the compression failed; the source is left as it was.
        """
        fresh = job.fd is not None
        fd = job.fd if fresh else ops.try_lock_path(job.path, write=True)
        job.fd = None
        if fd is None:
            return False
        try:
            final = job.path.with_name(job.path.name + ".gz")
            if fresh:
                # Just rotated, and locked by us ever since: it ends with a whole
                # line and has no .gz yet. Only a deletion by hand is possible.
                if ops.is_unlinked(fd):
                    return False
            elif not ops.same_file(job.path, fd):
                return False  # removed meanwhile (retention in another process)
            else:
                ops.repair_torn_tail(fd, job.path)
            if os.path.lexists(final) and not final.is_file():
                logger.warning(
                    "%s is in the way (not a regular file): %s is left uncompressed",
                    final.name,
                    job.path.name,
                )
                return False
            if fresh or not final.exists():
                tmp = job.path.with_name(job.path.name + _TMP_SUFFIX)
                bounds = job.bounds if fresh else None  # unlocked meanwhile: unknown
                ops.compress_to(fd, tmp, self.codec, sync=self.sync, bounds=bounds)
                ops.link_no_replace(tmp, final)
                if self.sync:
                    ops.fsync_dir(self.directory)
            ops.unlink(job.path)
            return True
        finally:
            os.close(fd)

    def enforce_retention(self, active: Path | None, active_size: int) -> int:
        """Delete our oldest files until at most ``max_files`` remain.

        Never deletes the active file, a file another process holds locked (its active
        file, or one being compressed), or any file this library did not name. A file
        that cannot be deleted (held, or the deletion fails) is skipped, with a
        warning when deleting it failed, and tried again at the next pass; the pass
        goes on with the others, so both rules still hold for every other file.

        Returns:
            how many files were deleted.
        """
        files = self.our_files()
        protected = parse_name(active.name, self.config.filename_prefix) if active else None
        excess, groups = retention_candidates(files, self.config.max_files, protected)
        expired: list[list[FileName]] = []
        if self.config.max_age is not None:
            max_age_ns = int(self.config.max_age * 1e9)
            expired = list(expired_groups(groups, time.time_ns(), max_age_ns))
        doomed = expired + [g for g in groups if g not in expired][: max(excess - len(expired), 0)]
        guard = RetentionGuard(self.directory, self.config.max_unshipped_bytes) if doomed else None
        keep = guard.protect(sorted(doomed)) if guard is not None else set()
        deleted = 0
        for group in expired:
            if group[0].stem in keep:
                excess -= 1  # kept for the shipper: it counts as handled
                groups.remove(group)
                continue
            removed = self._delete_shipped(group, guard)
            if removed is not None:
                deleted += removed
                excess -= 1
                groups.remove(group)
        for group in groups:
            if excess <= 0:
                break
            if group[0].stem in keep:
                excess -= 1
                continue
            removed = self._delete_shipped(group, guard)
            if removed is not None:
                deleted += removed
                excess -= 1
        if deleted:
            logger.debug("retention removed %d file(s) from %s", deleted, self.directory)
        self.scan(active_size, None if deleted else files)
        return deleted

    def _delete_shipped(self, group: list[FileName], guard: RetentionGuard | None) -> int | None:
        """Delete a file; if a shipper had not shipped it all (the guard's cap is
        reached), record the lines lost once it is gone."""
        losses = guard.losses(group) if guard is not None else []
        removed = self._delete_group(group)
        if removed and losses and guard is not None:
            guard.record(group, losses)
        return removed

    def _delete_group(self, group: list[FileName]) -> int | None:
        """Delete a file (and its leftover twin) unless somebody holds it.

        Returns:
            how many files were deleted (0: the group was already gone, deleted by
            another process), or ``None`` if it stays: held by somebody, or a
            deletion failed (logged). Never raises for one file.
        """
        paths = [self.directory / f.name for f in group]
        locks: list[int] = []
        try:
            for path in paths:
                try:
                    fd = ops.try_lock_path(path)
                except OSError as exc:
                    logger.warning("retention cannot open %s (%s); kept for now", path.name, exc)
                    return None
                if fd is None:
                    if os.path.lexists(path):
                        return None  # in use (or not a regular file now): it stays
                    continue  # gone meanwhile
                locks.append(fd)
            deleted = 0
            for path in paths:
                try:
                    deleted += ops.unlink(path)
                except OSError as exc:
                    logger.warning(
                        "retention cannot delete %s (%s); kept, and tried again later",
                        path.name,
                        exc,
                    )
                    return None
            return deleted
        finally:
            for fd in locks:
                os.close(fd)

    def scan(self, active_size: int, files: list[FileName] | None = None) -> None:
        """Count our files and their bytes, for ``stats()``.

        ``files`` is a listing just taken (by retention), if there is one;
        ``active_size`` (the active file's size) is left out of :attr:`files_bytes`.

        Runs after every rotation, so it must not cost a ``stat`` per file: a ``.gz``
        file never changes once it has its name, so its size is remembered. Only the
        uncompressed files (few: ours, and other processes' active ones) are looked at
        each time.
        """
        count = total = 0
        known, self.gz_sizes = self.gz_sizes, {}
        for info in self.our_files() if files is None else files:
            size = known.get(info.name) if info.compressed else None
            if size is None:
                try:
                    size = (self.directory / info.name).stat().st_size
                except FileNotFoundError:
                    continue
            if info.compressed:
                self.gz_sizes[info.name] = size
            total += size
            count += 1
        self.files, self.files_bytes = count, total - active_size


class Storage:
    """The files of one writer in ``metrics_dir``. Blocking; call from worker threads.

    Owns the active file: picking it at start (after :func:`remove_leftovers`),
    appending batches, size and time rotation, and releasing it at close. The closed
    files are its :attr:`archive`'s; the ``compress`` and retention methods here are
    the doors the writer uses to reach them (each one trip to a worker thread).
    """

    def __init__(self, directory: Path, config: WriterConfig) -> None:
        self.directory = directory
        self.config = config
        self.names = NameAllocator(config.filename_prefix, os.getpid())
        self.path: Path | None = None
        self.fd: int | None = None
        self.size = 0
        self.created_ns = 0  # creation time of the active file, from its name
        self.interval_ns = (
            int(config.rotate_interval * 1e9) if config.rotate_interval is not None else None
        )
        self.stale = False
        """The active file is empty and from an interval that has ended: the next
        batch goes to a new file (an idle writer creates no files)."""
        self._sealing_before: int | None = None  # boundary being sealed (ns), if any
        self.span = EntrySpan()
        """The time span of the active file's entries (for its ``.gz`` header)."""
        self.archive = Archive(directory, config)

    @property
    def _sync(self) -> bool:
        return self.config.fsync != "never"

    @property
    def files(self) -> int:
        """Our files in the directory (all processes), as of the last scan."""
        return self.archive.files

    @property
    def files_bytes(self) -> int:
        """Their total size at the last scan, the active file's left out."""
        return self.archive.files_bytes

    # -- start ---------------------------------------------------------------------

    def open(self) -> OpenOutcome:
        """Create the directory, repair what a crash left, and pick the active file.

        Continues the newest unlocked uncompressed file if it is below
        ``max_file_size``; every other unlocked uncompressed file is repaired and,
        with ``compress_old``, queued for compression. Files locked by another live
        process are not touched.
        """
        outcome = OpenOutcome()
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.directory, self.config.filename_prefix)
        sources = sorted(
            (f for f in self.archive.our_files() if not f.compressed), reverse=True
        )  # newest first
        for info in sources:
            path = self.directory / info.name
            try:
                fd = ops.open_append(path)
            except FileNotFoundError:
                continue
            except OSError as exc:  # replaced by a directory meanwhile, say
                logger.warning("cannot open %s (%s); left as it is", info.name, exc)
                continue
            if fd is None:
                continue  # another live writer or compression holds it, or a stranger
            outcome.bytes_cut += ops.repair_torn_tail(fd, path)
            if (
                self.fd is None
                and ops.file_size(fd) < self.config.max_file_size
                and not self._time_rotation_due(info.created_ns)
            ):
                self.fd, self.path, self.size = fd, path, ops.file_size(fd)
                self.created_ns = info.created_ns
                self.span = EntrySpan(complete=self.size == 0)  # unknown if others wrote to it
                outcome.continued = True
            else:
                # Let go of the lock: holding one descriptor per leftover file could
                # exhaust the descriptor limit. Compression locks it again by path.
                os.close(fd)
                if self.config.compress_old:
                    outcome.to_compress.append(CompressJob(path))
        if self.fd is None:
            self._start_new_file()
        self.archive.scan(self.size)
        return outcome

    def _time_rotation_due(self, created_ns: int, now_ns: int | None = None) -> bool:
        if self.interval_ns is None:
            return False
        now = time.time_ns() if now_ns is None else now_ns
        return rotation_bucket(now, self.interval_ns) > rotation_bucket(
            created_ns, self.interval_ns
        )

    def _start_new_file(self) -> None:
        now_ns = time.time_ns()
        if self._sealing_before is not None and now_ns >= self._sealing_before:
            # Lines accepted before a boundary belong to the interval that ended there,
            # even when their file is made just after it: it is named at the start of
            # that interval (the allocator keeps names increasing).
            assert self.interval_ns is not None
            now_ns = self._sealing_before - self.interval_ns
        for _ in range(_MAX_NAME_ATTEMPTS):
            info = self.names.next(now_ns)
            path = self.directory / info.name
            try:
                fd = ops.open_new(path)
            except FileExistsError:
                continue  # never overwrite: take the next name
            break
        else:  # pragma: no cover - needs 100 name collisions in a row
            raise FileExistsError(f"could not find a free file name in {self.directory}")
        if self.config.fsync == "always":
            try:
                ops.fsync_dir(self.directory)  # every flush durable: the name must be too
            except BaseException:
                ops.unlink(path)  # empty, and ours: not left behind, nor its descriptor
                os.close(fd)
                raise
        self.fd, self.path, self.size = fd, path, 0
        self.created_ns = info.created_ns
        self.span = EntrySpan()
        self.stale = False

    # -- write ---------------------------------------------------------------------

    def write(self, lines: Sequence[bytes], span: Span | None = None) -> WriteOutcome:
        """Append ``lines`` (each ending in a newline), rotating as needed.

        Each file gets one write of its joined lines. If a write fails, the file is
        cut back to its size before that write and the write is tried once more; if
        that fails too, the outcome says how many lines did land (a prefix) and why
        the rest did not. Nothing is ever written twice or in part.

        Time rotation is not decided here but by the caller, at each
        ``rotate_interval`` boundary (:meth:`seal`): a batch taken just before a
        boundary and written just after it belongs to the earlier file. Only an
        active file marked :attr:`stale` is replaced before the batch.

        ``span`` is the earliest and latest entry time of ``lines``, recorded in the
        header of each file they go to once it is compressed (``None``: unknown).
        """
        outcome = WriteOutcome()
        try:
            self._write_lines(lines, outcome, span)
        except OSError as exc:
            outcome.error = exc
        if outcome.rotations:
            outcome.deleted = self.retain_quietly()
        return outcome

    def seal(
        self, lines: Sequence[bytes], boundary_ns: int, span: Span | None = None
    ) -> WriteOutcome:
        """A ``rotate_interval`` boundary: append ``lines`` (accepted before it) to
        the active file, then rotate that file if it was created before
        ``boundary_ns`` and holds anything. An empty one is kept, marked
        :attr:`stale`: a quiet writer makes no new files, and no compressions.

        Returns:
            as :meth:`write`; a failed rotation is ``rotate_error`` (the lines were
            written, the file stays active).
        """
        outcome = WriteOutcome()
        self._sealing_before = boundary_ns
        try:
            self._write_lines(lines, outcome, span)
        except OSError as exc:
            outcome.error = exc
        finally:
            self._sealing_before = None
        if (
            outcome.error is None
            and self.fd is not None
            and self._time_rotation_due(self.created_ns, boundary_ns)
        ):
            if self.size == 0:
                self.stale = True
            else:
                try:
                    self._rotate(outcome)
                except OSError as exc:
                    outcome.rotate_error = exc
        if outcome.rotations:
            outcome.deleted = self.retain_quietly()
        return outcome

    def _write_lines(
        self, lines: Sequence[bytes], outcome: WriteOutcome, span: Span | None
    ) -> None:
        if not lines:
            return
        self._ensure_active_file()
        if self.stale:
            # An empty file of an interval that ended: replaced. If no new file can be
            # made, the lines go to the old one, to be rotated at the next boundary.
            self.stale = False
            try:
                self._rotate(outcome)
            except OSError as exc:
                outcome.rotate_error = exc
        done = 0
        total = sum(map(len, lines))
        while done < len(lines):
            assert self.fd is not None
            if done == 0 and self.size + total <= self.config.max_file_size:
                fit = len(lines)  # the common case, without a per-line loop
            else:
                fit = split_for_rotation(self.size, lines, done, self.config.max_file_size)
            if fit == 0:
                self._rotate(outcome)
                continue
            data = b"".join(lines[done : done + fit])
            self.span.add(span)  # before the write: a span too wide is still true
            self._append(data)
            done += fit
            outcome.written = done
            outcome.bytes_written += len(data)
            self.size += len(data)
            if done < len(lines):
                self._rotate(outcome)
        if self.config.fsync == "always" and self.fd is not None:
            ops.fsync(self.fd)

    def _append(self, data: bytes) -> None:
        assert self.fd is not None
        try:
            ops.append(self.fd, data, self.size)
        except OSError as first:
            logger.debug("write failed (%s); rolled back, retrying once", first)
            try:
                ops.append(self.fd, data, self.size)
            except OSError:
                self._check_rollback()
                raise

    def _check_rollback(self) -> None:
        """If the file could not be cut back, stop using it: a new file starts clean."""
        assert self.fd is not None
        assert self.path is not None
        try:
            if ops.file_size(self.fd) == self.size:
                return
        except OSError:
            pass
        logger.error(
            "%s could not be cut back after a failed write; starting a new file", self.path.name
        )
        self._drop_active_file()

    def _ensure_active_file(self) -> None:
        """Start a new file if there is none, or if ours was removed under us (for
        example, ``metrics_dir`` was deleted while running)."""
        if self.fd is not None and self.path is not None:
            if not ops.is_unlinked(self.fd):
                return
            logger.warning("%s was removed while in use; starting a new file", self.path)
            self._drop_active_file()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_new_file()

    def _drop_active_file(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.path, self.size = None, None, 0

    def _rotate(self, outcome: WriteOutcome) -> None:
        assert self.fd is not None
        assert self.path is not None
        old = CompressJob(self.path, self.fd, self.span.bounds())
        if self._sync:
            ops.fsync(self.fd)
            if not self.config.compress_old:
                # The rotated file stays as it is: make its name durable now. With
                # compression, the directory is synced once its .gz is in place.
                ops.fsync_dir(self.directory)
        self.fd = None  # from here on, `old` owns the descriptor
        try:
            self._start_new_file()
        except OSError:
            self.fd, self.path = old.fd, old.path  # keep writing where we were
            raise
        assert old.fd is not None
        if ops.file_size(old.fd) == 0:
            # A stale empty file replaced: nothing to keep, so nothing to compress,
            # and nothing rotated out.
            ops.unlink(old.path)
            os.close(old.fd)
            return
        outcome.rotations += 1
        if self.config.compress_old:
            outcome.rotated.append(old)
        else:
            os.close(old.fd)

    # -- the closed files (the archive's) -------------------------------------------

    def compress(self, job: CompressJob) -> bool:
        """:meth:`Archive.compress`."""
        return self.archive.compress(job)

    def compress_and_retain(self, job: CompressJob) -> tuple[bool, int]:
        """:meth:`compress`, then retention, in one trip to a worker thread.

        Returns:
            whether the file was compressed, and how many files retention deleted.

        Raises:
            OSError: the compression failed (retention did not run).
        """
        done = self.compress(job)
        return done, self.retain_quietly()

    def enforce_retention(self) -> int:
        """:meth:`Archive.enforce_retention`, sparing the active file."""
        return self.archive.enforce_retention(self.path, self.size)

    def retain_quietly(self) -> int:
        """:meth:`enforce_retention`; a failure (the directory cannot be listed) is
        logged, never raised: retention is tried again at its next pass."""
        try:
            return self.enforce_retention()
        except OSError as exc:
            logger.warning("retention in %s failed: %s", self.directory, exc)
            return 0

    # -- stop ----------------------------------------------------------------------

    def close(self) -> None:
        """Sync (unless ``fsync="never"``) and release the active file, uncompressed."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None  # the path stays: it names the file to continue
        try:
            if self._sync:
                ops.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def release(job: CompressJob) -> None:
        """Drop a queued job's lock without compressing it."""
        if job.fd is not None:
            os.close(job.fd)
            job.fd = None


def remove_leftovers(directory: Path, prefix: str) -> None:
    """Start-up repair: remove interrupted compressions, files whose creation was
    interrupted, and sources whose ``.gz`` is complete. Files another live process
    holds are left alone."""
    names = set()
    with os.scandir(directory) as entries:
        for item in entries:
            try:
                regular = item.is_file()
            except OSError:
                regular = False
            if regular:  # strangers are never removed; Archive.our_files warns
                names.add(item.name)
    # Temporary files first, while their sources are still there to be locked.
    for name in sorted(names, key=lambda n: not n.endswith(_TMP_SUFFIX)):
        if name.endswith(_TMP_SUFFIX):
            source = directory / name[: -len(_TMP_SUFFIX)]
            if parse_name(source.name, prefix) is None:
                continue
            fd = ops.try_lock_path(source)
            if fd is None and source.exists():
                continue  # a live compression in another process
            ops.unlink(directory / name)
            logger.warning("removed %s, left by an interrupted compression", name)
            if fd is not None:
                os.close(fd)
        elif name.endswith(ops.NEW_SUFFIX):
            # A file whose creation was interrupted before it got its name.
            if parse_name(name[: -len(ops.NEW_SUFFIX)], prefix) is None:
                continue
            fd = ops.try_lock_path(directory / name)
            if fd is None:
                continue  # being created right now by a live writer
            try:
                ops.unlink(directory / name)
            finally:
                os.close(fd)
        elif name.endswith(".jsonl") and name + ".gz" in names:
            if parse_name(name, prefix) is None:
                continue
            fd = ops.try_lock_path(directory / name)
            if fd is None:
                continue
            try:
                ops.unlink(directory / name)
                logger.info("removed %s: its complete .gz exists", name)
            finally:
                os.close(fd)
