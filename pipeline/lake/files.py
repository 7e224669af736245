"""Durable file writes: temporary name, fsync, rename, fsync the directory.

A reader never sees half a file, and after a crash a file is either the old one or the
new one, never a mix. A write that fails (a full or read-only disk) leaves no staging
file behind and raises `DiskError`: one line naming what could not be written and why.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from pipeline.config import FAULT_ENV
from pipeline.errors import SessionflowError

Writer = Callable[[Path], object]  # writes the file at the path it is given


class DiskError(SessionflowError):
    """A file could not be written: the disk is full, read-only, or refused the write."""


def disk_error(what: str, exc: OSError, outcome: str) -> DiskError:
    """`exc` as one line: what could not be written, where, the system's reason, and
    what that left (`outcome`)."""
    code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    reason = exc.strerror or (str(exc).splitlines() or [""])[0]
    where = f" ({exc.filename})" if exc.filename else ""
    return DiskError(" ".join(f"cannot write {what}{where}: {reason} [{code}]; {outcome}".split()))


def write_atomically(path: Path, write: Writer) -> None:
    """Call `write(staging_path)`, then make the result appear at `path` in one step."""
    write_all_atomically([(path, write)])


def write_all_atomically(files: Sequence[tuple[Path, Writer]]) -> None:
    """Write every file to its staging name first, then rename them all into place: a
    failure while staging (ENOSPC, EROFS) changes none of the files at their paths."""
    staged: list[tuple[Path, Path]] = []
    current = Path()
    try:
        for path, write in files:
            current = path
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((staging, path))
            write(staging)
            _injected_disk_fault(staging)
            with staging.open("rb+") as handle:
                os.fsync(handle.fileno())
    except BaseException as exc:
        for staging, _ in staged:  # half-written staging files would fill the disk more
            with suppress(OSError):  # a read-only disk refuses even to unlink a missing file
                staging.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno:
            # Name the file being written, not its staging name (pyarrow's errors name none).
            raise OSError(exc.errno, os.strerror(exc.errno), str(current)) from exc
        raise
    for staging, path in staged:
        staging.replace(path)
    for directory in dict.fromkeys(path.parent for _, path in staged):
        fsync_dir(directory)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    def write(staging: Path) -> None:
        staging.write_bytes(data)

    write_atomically(path, write)


def fsync_dir(directory: Path) -> None:
    # The rename itself must survive a power cut, not only the file's bytes.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _injected_disk_fault(staging: Path) -> None:
    """Tests' disk fault where a small tmpfs cannot be mounted: SESSIONFLOW_FAULT=
    `disk:<EROFS|ENOSPC>:<limit bytes>:<directory>` fails a write under `directory` as
    that filesystem would (ENOSPC: once the files under it would exceed the limit)."""
    wanted = os.environ.get(FAULT_ENV, "")
    if not wanted.startswith("disk:"):
        return
    _, name, limit, directory = wanted.split(":", 3)
    root = Path(directory)
    if not staging.is_relative_to(root):
        return
    code = getattr(errno, name)
    if code == errno.ENOSPC:
        used = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        if used <= int(limit):
            return
    raise OSError(code, os.strerror(code), str(staging))
