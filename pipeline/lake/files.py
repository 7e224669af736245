"""Durable file writes: temporary name, fsync, rename, fsync the directory.

A reader never sees half a file, and after a crash a file is either the old one or the
new one, never a mix.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(staging_path)`, then make the result appear at `path` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(staging)
    with staging.open("rb+") as handle:
        os.fsync(handle.fileno())
    staging.replace(path)
    fsync_dir(path.parent)


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
