"""Every DuckDB connection the product opens, bounded by [warehouse] memory_limit, threads
and temp_directory: a build, the report, status, cost loading and `query` all connect
here, never with DuckDB's defaults (80 % of the machine's memory, spills to `.tmp/` in the
working directory). tests/unit/test_duckdb_connections.py checks that nothing in
pipeline/ or flows/ connects otherwise.

Spilling: a process spills under <temp_directory>/duckdb-<pid>/ (owner-only), one directory per
database there, which DuckDB creates when it first spills and removes when the database
closes: two processes, or two databases of one process, never share spill files. A
process's first connection removes what killed processes left (their pid is gone) and
what a dead process of its own pid left.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from pipeline.config import MEMORY_SHARE, Settings
from pipeline.daemons import runs_command
from pipeline.errors import ConfigError, SessionflowError

# A cgroup (container) limit below the machine's memory is the machine's memory that counts.
_CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")

# DuckDB's configuration options, as duckdb.connect takes them.
DuckDBOptions = dict[str, str | bool | int | float | list[str]]

_PROCESS_DIR = re.compile(r"duckdb-(\d+)")
_prepared: set[Path] = set()
_prepare_lock = threading.Lock()
_memory_databases = itertools.count()


def connect(
    settings: Settings, database: Path | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A connection to `database` (in memory when None) under the [warehouse] limits."""
    target = ":memory:" if database is None else str(database)
    return duckdb.connect(target, read_only=read_only, config=limits(settings, database))


def connect_without_spilling(
    memory_limit: str,
    threads: int | None,
    config: Mapping[str, str | bool | int | float | list[str]],
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that spills nothing (`query`: a user's SQL must not fill
    the disk), under `memory_limit` (as [warehouse] memory_limit takes it) and `threads`."""
    options: DuckDBOptions = {
        **config,
        "memory_limit": duckdb_memory_limit(memory_limit),
        "temp_directory": "",
    }
    if threads is not None:
        options["threads"] = threads
    return duckdb.connect(":memory:", config=options)


def limits(settings: Settings, database: Path | None = None) -> DuckDBOptions:
    """DuckDB's memory_limit, threads and temp_directory for a connection to `database`."""
    options: DuckDBOptions = {
        "memory_limit": duckdb_memory_limit(settings.warehouse.memory_limit),
        "temp_directory": str(spill_directory(settings, database)),
    }
    if settings.warehouse.threads is not None:
        options["threads"] = settings.warehouse.threads
    return options


def duckdb_memory_limit(setting: str) -> str:
    """The setting as DuckDB takes it: a size as written, a share of memory in MiB."""
    share = MEMORY_SHARE.fullmatch(setting)
    if share is None:
        return setting.strip()
    return f"{int(machine_memory() * float(share[1]) / 100) // 2**20}MiB"


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's if lower."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with suppress(OSError, ValueError):
        return min(physical, int(_CGROUP_MEMORY_MAX.read_text().strip()))  # "max": no limit
    return physical


@contextmanager
def memory_bounded(settings: Settings, what: str) -> Iterator[None]:
    """DuckDB running out of its memory limit, as one line naming the setting."""
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        setting = settings.warehouse.memory_limit
        limit = duckdb_memory_limit(setting)
        shown = setting if limit == setting else f"{setting} = {limit}"
        raise SessionflowError(
            f"{what} needs more memory than [warehouse] memory_limit ({shown}) allows, even "
            f"spilling to {settings.warehouse_temp_dir}: raise it, or lower [warehouse] "
            f"threads ({reason})"
        ) from None


def spill_directory(settings: Settings, database: Path | None) -> Path:
    """Where the connection's database spills: its own directory in this process's."""
    process_dir = settings.warehouse_temp_dir / f"duckdb-{os.getpid()}"
    with _prepare_lock:
        # Again when it is gone: a long-running `serve` outlives a cleaned-up data dir.
        if process_dir not in _prepared or not process_dir.is_dir():
            _prepare(settings.warehouse_temp_dir, process_dir)
            _prepared.add(process_dir)
    # One database of a file is one DuckDB instance in a process (its connections share
    # it, and its configuration): named after the file. Each in-memory one is its own.
    name = database.name if database is not None else f"memory-{next(_memory_databases)}"
    return process_dir / name


def _prepare(root: Path, process_dir: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in root.iterdir():
            # Only directories of this module's naming: temp_directory may be a shared one.
            owner = _PROCESS_DIR.fullmatch(leftover.name)
            if owner and not runs_command(int(owner[1])):
                shutil.rmtree(leftover, ignore_errors=True)
        # This pid's directory before this process's first connection: a dead process's.
        shutil.rmtree(process_dir, ignore_errors=True)
        process_dir.mkdir(mode=0o700)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"[warehouse] temp_directory {root} cannot be created or used: {reason}"
        ) from None
    # The databases remove their own directories when they close; this, the empty rest.
    atexit.register(_remove_empty, process_dir)


def _remove_empty(directory: Path) -> None:
    with suppress(OSError):
        directory.rmdir()
