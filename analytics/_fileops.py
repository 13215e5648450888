"""Blocking primitives. Everything here runs in worker threads, never on the loop.

This module is also the seam that fault tests patch: every write, truncate, rename,
fsync and unlink the library performs goes through a function defined here.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal

from ._bounds import TimeBounds, gzip_header, gzip_trailer
from ._policy import FileName, parse_name

__all__ = [
    "GzipCodec",
    "append",
    "compress_to",
    "data_file_names",
    "fsync_dir",
    "gunzip",
    "link_no_replace",
    "lock_exclusive",
    "open_append",
    "open_new",
    "repair_torn_tail",
    "try_lock_path",
    "write_all",
]

logger = logging.getLogger("analytics")

# The system calls that fault tests replace to produce errors nothing real produces
# on demand (EIO, say). Real faults (a size limit, a full tmpfs) need no patching.
_os_write = os.write
_os_ftruncate = os.ftruncate

CHUNK_SIZE = 1024 * 1024
"""Bytes read per step when compressing or repairing: large, but bounded."""

GZ_READ_CHUNK = 256 * 1024
"""Compressed bytes read per step when decompressing."""


NEW_SUFFIX = ".new"
"""A file being created: locked under this name first, then linked to its real name."""

_STAGING_ATTEMPTS = 20
"""How often :func:`open_new` starts over when its ``.new`` file is removed under it."""


def open_new(path: Path) -> int:
    """Create ``path`` for appending, failing if it exists; return a locked fd.

    The file is created and locked under ``<name>.new`` and only then linked to its
    real name, so no other process can ever see it unlocked under its real name (and
    take it for a file nobody writes). ``O_EXCL`` and ``link`` make "never overwrite
    an existing file" a kernel guarantee.

    Between its creation and its lock, the ``.new`` file can be taken for one left by
    a crash and removed by another process starting up (:func:`remove_leftovers`
    removes only what it can lock). Once locked it is safe, so after locking this
    checks that the name still holds this file, and starts over if not.

    Raises:
        FileExistsError: the name is taken.
        OSError: the file cannot be created.
    """
    staging = path.with_name(path.name + NEW_SUFFIX)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    for _ in range(_STAGING_ATTEMPTS):
        fd = os.open(staging, flags, 0o644)
        try:
            lock_exclusive(fd)
            if not same_file(staging, fd):
                os.close(fd)  # removed by another process's clean-up: not ours now
                continue
            os.link(staging, path)
        except BaseException:
            os.close(fd)
            unlink(staging)
            raise
        unlink(staging)
        return fd
    raise FileNotFoundError(f"{staging} was removed {_STAGING_ATTEMPTS} times while being created")


def data_file_names(directory: Path, prefix: str) -> tuple[list[FileName], list[str]]:
    """The data files in ``directory``: one listing, no ``stat`` for a plain file.

    The one rule for "this is one of our data files": its name parses as ours *and*
    it is a regular file (or a link to one). A directory, FIFO, socket or device that
    merely has such a name is a stranger: never read, continued, compressed, counted
    or deleted.

    Returns:
        ``(ours, strangers)``: our files, and the names of the strangers, unsorted.

    Raises:
        OSError: the directory cannot be listed.
    """
    ours: list[FileName] = []
    strangers: list[str] = []
    with os.scandir(directory) as entries:
        for item in entries:
            info = parse_name(item.name, prefix)
            if info is None:
                continue
            try:
                regular = item.is_file()
            except OSError:
                regular = False
            if regular:
                ours.append(info)
            else:
                strangers.append(item.name)
    return ours, strangers


def _open_regular(path: Path, flags: int) -> int | None:
    """``os.open`` that never blocks on a FIFO and refuses what is not a regular file
    (``None``): a name can be taken by a stranger between a listing and an open."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def open_append(path: Path) -> int | None:
    """Open an existing regular file for appending and lock it; ``None`` if another
    holder has it locked (a live writer, or a compression in progress), it is not a
    regular file, or it was removed between the open and the lock (a compression or
    retention in another process that held it until it was gone).

    Raises:
        OSError: it cannot be opened (``IsADirectoryError`` for a directory).
    """
    fd = _open_regular(path, os.O_RDWR | os.O_APPEND)
    if fd is None:
        return None
    if not lock_exclusive(fd, wait=False) or not same_file(path, fd):
        os.close(fd)
        return None
    return fd


def lock_exclusive(fd: int, *, wait: bool = True) -> bool:
    """Take an exclusive advisory ``flock`` on ``fd``; ``False`` if ``wait`` is false
    and somebody else holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def try_lock_path(path: Path, *, write: bool = False) -> int | None:
    """Open ``path`` (read-only, or read-write with ``write``) and lock it without waiting.

    Returns:
        the locked fd, or ``None`` if the file is gone, is not a regular file, or
        somebody holds its lock.
    """
    mode = os.O_RDWR if write else os.O_RDONLY
    try:
        fd = _open_regular(path, mode)
    except (FileNotFoundError, IsADirectoryError):
        return None
    if fd is None:
        return None
    if not lock_exclusive(fd, wait=False):
        os.close(fd)
        return None
    return fd


def append(fd: int, data: bytes, size_before: int) -> None:
    """Append ``data`` to ``fd`` whole, or not at all.

    ``os.write`` may write only part of the data (a full disk, a file size limit); the
    loop continues until the kernel refuses. On any error the file is cut back to
    ``size_before`` so no half line stays behind and a retry writes nothing twice.

    Raises:
        OSError: the data could not be written; the file is back at ``size_before``.
    """
    view = memoryview(data)
    try:
        while view:
            written = _os_write(fd, view)
            view = view[written:]
    except OSError:
        truncate(fd, size_before)
        raise


def truncate(fd: int, size: int) -> None:
    """Cut the file open on ``fd`` back to ``size`` bytes."""
    _os_ftruncate(fd, size)


def fsync(fd: int) -> None:
    """Force a file's data to stable storage."""
    os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Force a directory's entries (creations, renames, removals) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def link_no_replace(src: Path, dst: Path) -> None:
    """Give ``src`` the name ``dst`` and drop the old name, never replacing a file.

    Raises:
        FileExistsError: ``dst`` already exists.
    """
    os.link(src, dst)
    os.unlink(src)


def unlink(path: Path) -> bool:
    """Remove a file; a file that is already gone is not an error.

    Returns:
        whether this call removed it.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def file_size(fd: int) -> int:
    """The current size of the file open on ``fd``."""
    return os.fstat(fd).st_size


def same_file(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open on ``fd`` (it was not removed)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def is_unlinked(fd: int) -> bool:
    """Whether the file open on ``fd`` has lost its last name (it was deleted, or its
    directory was). One ``fstat``: cheap, and it takes no lock on the directory, so
    it never waits behind a directory sync in another thread."""
    return os.fstat(fd).st_nlink == 0


def repair_torn_tail(fd: int, path: Path) -> int:
    """Cut a torn last line (one without its newline) off the file open on ``fd``.

    Reads backwards in bounded chunks to the last newline.

    Returns:
        the number of bytes cut (0 if the file already ended cleanly).
    """
    size = file_size(fd)
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    end = size
    keep = 0
    while end > 0:
        start = max(0, end - CHUNK_SIZE)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    truncate(fd, keep)
    cut = size - keep
    logger.warning("repaired %s: cut a torn last line of %d bytes", path.name, cut)
    return cut


Compressor = Literal["zlib", "isal"]
"""What makes the gzip files: the standard library's zlib, or Intel's ISA-L (extra
``[isal]``). Both write standard gzip files that any reader opens."""

ISAL_LEVELS = {level: (level + 2) // 3 for level in range(1, 10)}
"""``compress_level`` (1-9) to ISA-L's levels: 1-3 to 1, 4-6 to 2, 7-9 to 3 (its
level 0 compresses too little to be worth a level of ours)."""


@dataclass(frozen=True)
class GzipCodec:
    """A zlib-like module (``compress``, ``compressobj``, ``crc32``), the level to give
    it, and the ``compress_level`` it stands for (which the gzip header names)."""

    module: ModuleType
    level: int
    setting: int

    @classmethod
    def of(cls, compressor: Compressor, level: int) -> GzipCodec:
        """The codec for a writer's ``compressor`` and ``compress_level``.

        Raises:
            ImportError: ``compressor`` is ``"isal"`` and isal is not installed.
        """
        if compressor == "isal":
            from isal import isal_zlib

            return cls(isal_zlib, ISAL_LEVELS[level], level)
        return cls(zlib, level, level)


def compress_to(
    src_fd: int,
    tmp_path: Path,
    codec: GzipCodec,
    *,
    sync: bool,
    bounds: TimeBounds | None = None,
) -> None:
    """Stream the file open on ``src_fd`` into a new gzip file at ``tmp_path``, with
    the entries' time span in its header when ``bounds`` are known (see ``_bounds``).

    Reads and compresses in bounded chunks, never the whole file at once. zlib and
    ISA-L release the GIL while they work, so the event loop keeps running on the
    other core.

    Raises:
        OSError: the gzip file could not be written; ``tmp_path`` has been removed.
    """
    library, level = codec.module, codec.level
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    out = os.open(tmp_path, flags, 0o644)
    try:
        # One buffer, reused for every chunk: a fresh 1 MiB object per read would
        # leave the thread's malloc arena fragmented and the process RSS high.
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        # Each system call or zlib call here gives up the GIL, and getting it back can
        # take a while when the event loop is busy: so as few calls as possible. A
        # short read is the end of a regular file; a file that fits in one chunk is
        # compressed in one call, and written in one write with its header and
        # trailer. The body is raw deflate (wbits=-15): the header is ours, to hold
        # the bounds, and the trailer is the CRC-32 and size of what went in.
        header = gzip_header(bounds, level=codec.setting)
        count = os.preadv(src_fd, [buffer], 0)
        if count < CHUNK_SIZE:
            chunk = view[:count]
            body = library.compress(chunk, level, wbits=-15)
            write_all(out, header + body + gzip_trailer(library.crc32(chunk), count))
        else:
            deflate = library.compressobj(level, library.DEFLATED, -15)
            crc, offset, pending = 0, count, header
            while True:
                chunk = view[:count]
                crc = library.crc32(chunk, crc)
                compressed = pending + deflate.compress(chunk)
                if count < CHUNK_SIZE:
                    write_all(out, compressed + deflate.flush() + gzip_trailer(crc, offset))
                    break
                write_all(out, compressed)
                pending = b""
                count = os.preadv(src_fd, [buffer], offset)
                offset += count
        if sync:
            fsync(out)
    except BaseException:
        os.close(out)
        unlink(tmp_path)
        raise
    os.close(out)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_os_write(fd, view) :]


def gunzip(path: Path, skip: int = 0) -> Iterator[bytes]:
    """The uncompressed bytes of a gzip file (all its members), after the first
    ``skip``, yielded as they come: at a damaged or truncated stream, everything
    before the damage has been yielded when ``EOFError`` or ``zlib.error`` is raised.
    """
    with open(path, "rb") as f:
        inflate = zlib.decompressobj(wbits=31)
        started = False
        while raw := f.read(GZ_READ_CHUNK):
            while raw:
                started = True
                out = inflate.decompress(raw)
                raw = b""
                if inflate.eof:  # another member may follow
                    raw = inflate.unused_data
                    inflate = zlib.decompressobj(wbits=31)
                    started = bool(raw)
                if skip:
                    cut = min(skip, len(out))
                    out, skip = out[cut:], skip - cut
                if out:
                    yield out
        if started:
            raise EOFError("compressed file ended before the end-of-stream marker")
