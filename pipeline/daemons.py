"""Local background servers started by the CLI (the Kafka broker, the Prefect server):
their pid files, liveness, a bounded stop and their ports. Standard library only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

LOG_TAIL_LINES = 15


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def runs_command(pid: int, *markers: bytes) -> bool:
    """Alive, not a zombie, and its command line holds every one of `markers` (so a pid
    re-used by another program is not taken for ours)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return False
    return all(marker in cmdline for marker in markers)


def signal_process(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def signal_group(pid: int, signum: signal.Signals) -> None:
    # Started with start_new_session: the process group is the leader's pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def terminate(
    pid: int,
    grace_s: float,
    *,
    alive: Callable[[], bool],
    reap: Callable[[], None],
    send: Callable[[int, signal.Signals], None] = signal_process,
) -> bool:
    """SIGTERM, wait up to grace_s, then SIGKILL. `reap` polls a child this process
    started (or it stays a zombie). Returns True when SIGKILL was needed."""
    send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        reap()
        if not alive():
            return False
        time.sleep(0.1)
    send(pid, signal.SIGKILL)
    while alive():
        reap()
        time.sleep(0.05)
    return True


def port_is_free(host: str, port: int) -> bool:
    # SO_REUSEADDR, as the servers' own listeners use: only a live listener blocks the
    # bind, not connections lingering in TIME_WAIT from a server that just stopped.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(log_file: Path, lines: int = LOG_TAIL_LINES) -> str:
    text = log_file.read_text(errors="replace") if log_file.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"
