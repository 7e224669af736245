"""A small disk of its own for one directory, whose faults a test switches on and off.

Mode "tmpfs": a size-limited tmpfs mounted on the directory; "unwritable" remounts it
read-only (EROFS, even for root), "full" writes a ballast file until only the wanted
bytes are free (ENOSPC). Where mounting is not permitted, mode "fault layer": the product's
atomic writes under the directory fail as that filesystem would (SESSIONFLOW_FAULT=disk:...,
see pipeline.lake.files); the DuckDB file is not covered there. Never a skip.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.config import FAULT_ENV

BALLAST = ".ballast"
FORCE_LAYER_ENV = "SESSIONFLOW_TESTS_DISK_LAYER"  # set: the fault layer even where tmpfs works
_CHUNK = 1 << 20


class SmallDisk:
    def __init__(self, path: Path, size_bytes: int) -> None:
        self.path = path
        self.size_bytes = size_bytes
        self.mode = "tmpfs"
        self._fault: str | None = None  # the fault layer's current fault

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        if os.environ.get(FORCE_LAYER_ENV):  # to run the fallback where mounting works
            self.mode, why = "fault layer", f"{FORCE_LAYER_ENV} is set"
        else:
            size = f"size={self.size_bytes}"
            done = _run("mount", "-t", "tmpfs", "-o", size, "tmpfs", str(self.path))
            why = done.stderr.strip() or "mounted"
            if done.returncode != 0:
                self.mode = "fault layer"
        print(f"[disk] {self.path}: mode {self.mode} ({why})")

    def env(self) -> dict[str, str]:
        """What a process writing under the directory needs in its environment."""
        return {FAULT_ENV: f"disk:{self._fault}:{self.path}"} if self._fault else {}

    def unwritable(self) -> None:
        if self.mode == "tmpfs":
            _check(_run("mount", "-o", "remount,ro", str(self.path)))
            probe = self.path / ".probe"
            try:
                probe.write_bytes(b"x")
            except OSError as exc:
                assert exc.errno == errno.EROFS, exc
            else:
                raise AssertionError(f"{self.path} is still writable after remount,ro")
        else:
            self._fault = "EROFS:0"

    def writable(self) -> None:
        if self.mode == "tmpfs":
            _check(_run("mount", "-o", "remount,rw", str(self.path)))
        self._fault = None

    def fill(self, leave_bytes: int) -> int:
        """Leave about `leave_bytes` free (whole pages); returns the bytes left free."""
        if self.mode != "tmpfs":
            self._fault = f"ENOSPC:{_used(self.path) + leave_bytes}"
            return leave_bytes
        stats = os.statvfs(self.path)
        ballast = stats.f_bavail * stats.f_frsize - leave_bytes
        with (self.path / BALLAST).open("wb") as out:
            while ballast > 0:
                out.write(b"\0" * min(_CHUNK, ballast))
                ballast -= _CHUNK
            out.flush()
            os.fsync(out.fileno())
        stats = os.statvfs(self.path)
        return stats.f_bavail * stats.f_frsize

    def free(self) -> None:
        (self.path / BALLAST).unlink(missing_ok=True)
        self._fault = None

    def unmount(self) -> None:
        if self.mode != "tmpfs":
            return
        done = _run("umount", str(self.path))
        if done.returncode != 0:  # a process of the test still holds a file: detach it
            _check(_run("umount", "-l", str(self.path)))


@contextmanager
def small_disk(path: Path, size_bytes: int) -> Iterator[SmallDisk]:
    disk = SmallDisk(path, size_bytes)
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()


def staging_files(root: Path) -> list[Path]:
    """Half-written files a failed atomic write could leave (pipeline.lake.files)."""
    return sorted(root.rglob(".*.tmp"))


def _used(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def _check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"{' '.join(done.args)}: {done.stderr.strip()}"
