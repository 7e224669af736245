"""One writer of the warehouse at a time, across processes.

A `run daily` started during a `backfill` (or a cost load during either) waits for the
lock, up to `flows.lock_wait_seconds`, saying whom it waits for; then it stops with one
line. Neither ever publishes a partial or mixed day. The lock is an advisory `flock` on
`<data_dir>/warehouse.lock`, released by the kernel when its holder dies, even by SIGKILL.
Re-entrant within a process (a cost load that rebuilds the days it touched).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import SessionflowError
from pipeline.lake.files import disk_error

_POLL_SECONDS = 0.5
_depth = 0  # how many holders in this process (re-entrant: the file lock is taken once)
_depth_guard = threading.Lock()


class WarehouseBusy(SessionflowError):
    pass


def hold_warehouse(
    settings: Settings, holder: str, say: Callable[[str], None]
) -> AbstractContextManager[None]:
    """`warehouse_lock` with the settings' data dir and `flows.lock_wait_seconds`."""
    return warehouse_lock(
        settings.data_dir, holder, wait_seconds=settings.flows.lock_wait_seconds, say=say
    )


@contextmanager
def warehouse_lock(
    data_dir: Path, holder: str, *, wait_seconds: float, say: Callable[[str], None]
) -> Iterator[None]:
    """Hold the warehouse for `holder` (e.g. "backfill 2026-11-01..2026-11-30")."""
    global _depth
    with _depth_guard:
        nested = _depth > 0
        _depth += 1
    try:
        if nested:
            yield
        else:
            with _file_lock(data_dir, holder, wait_seconds, say):
                yield
    finally:
        with _depth_guard:
            _depth -= 1


@contextmanager
def _file_lock(
    data_dir: Path, holder: str, wait_seconds: float, say: Callable[[str], None]
) -> Iterator[None]:
    path = data_dir / "warehouse.lock"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+")
    except OSError as exc:  # a read-only or full data directory: said before anything changed
        raise disk_error("the warehouse lock", exc, "nothing changed") from exc
    with handle:
        _acquire(handle.fileno(), path, wait_seconds, say)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}: {holder}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _acquire(fd: int, path: Path, wait_seconds: float, say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse is busy ({holder}); waited {wait_seconds:g} s "
                    "(flows.lock_wait_seconds): try again when it finishes"
                ) from None
            if not announced:
                say(f"waiting for the warehouse ({holder})")
                announced = True
            time.sleep(_POLL_SECONDS)  # polling a lock another process holds
