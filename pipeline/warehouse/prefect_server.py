"""The local Prefect server: started once, kept up, used by every flow command.

Without a server, each `run`/`backfill`/`demo` starts Prefect's temporary server (about
12 s on two cores: migrations on a fresh SQLite store) and stops it again. This module
starts one that stays up, as pipeline.kafka.broker does for Kafka:

  start   `python -m prefect server start` in a session of its own, its state under
          <data_dir>/prefect-server/ (PREFECT_HOME, pid file, url file, server.log), then
          wait for /api/health until a bounded deadline; idempotent
  stop    SIGTERM to its process group, a bounded wait, then SIGKILL; idempotent
  status  running / not answering / stopped / died without a clean stop

`use_prefect_server(settings)` is called by the flow commands *before Prefect is
imported*: PREFECT_API_URL when set; otherwise the local server's URL when it is healthy
(exported as PREFECT_API_URL); otherwise nothing, and Prefect's temporary server is the
fallback, with its telemetry and analytics off.

Only the standard library is imported here: the CLI probes the server on every flow
command, and importing Prefect (or httpx) just to probe costs a second.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path

from pipeline.config import Settings
from pipeline.daemons import (
    LOG_TAIL_LINES,
    log_tail,
    port_is_free,
    read_pid,
    runs_command,
    signal_group,
    terminate,
)
from pipeline.errors import SessionflowError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200

# No data leaves this machine, and no ERROR line when it cannot (offline, firewalled):
# the server's telemetry heartbeat and the SDK's usage events are both switched off.
QUIET_PREFECT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


class PrefectServerError(SessionflowError):
    """The local Prefect server could not be started or stopped."""


class ServerState(Enum):
    RUNNING = "running"
    NOT_ANSWERING = "not answering"  # alive, /api/health fails (starting, or hung)
    STOPPED = "stopped"
    DIED = "died"  # pid file left behind: killed or crashed, never stopped cleanly


@dataclass(frozen=True)
class ServerStatus:
    state: ServerState
    pid: int | None
    api_url: str | None
    message: str


@dataclass(frozen=True)
class StartResult:
    pid: int
    api_url: str
    seconds: float
    already_running: bool


def healthy(api_url: str, timeout_s: float = 1.0) -> bool:
    """True when the Prefect API at `api_url` (".../api") answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout_s) as answer:
            return bool(answer.status == 200 and json.loads(answer.read() or b"false") is True)
    except (OSError, ValueError, urllib.error.URLError):
        return False


class LocalPrefectServer:
    def __init__(
        self, state_dir: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> LocalPrefectServer:
        return cls(server_dir(settings), host=host, port=port)

    # -- paths ---------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        """The server's PREFECT_HOME: its SQLite database and profiles."""
        return self.state_dir / "home"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "server.pid"

    @property
    def url_file(self) -> Path:
        """The API URL of the running server: how clients find it, whatever its port."""
        return self.state_dir / "server.url"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    # -- steps ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> StartResult:
        current = self.status()
        if current.state in (ServerState.RUNNING, ServerState.NOT_ANSWERING):
            assert current.pid is not None
            if current.api_url is not None:
                return StartResult(current.pid, current.api_url, 0.0, already_running=True)
            # Alive, but its url file is gone (a crash between the two writes, or deleted):
            # nobody can find it, so it is replaced.
            self._terminate(current.pid, grace_s=10.0)
            self._forget()
        if current.state is ServerState.DIED:
            self._forget()
        if not port_is_free(self.host, self.port):
            raise PrefectServerError(
                f"port {self.host}:{self.port} is already in use by another process; stop it "
                "or start the Prefect server on another port (--port)"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **QUIET_PREFECT, "PREFECT_HOME": str(self.home)}
        env.pop("PREFECT_API_URL", None)  # the server itself is no client of another one
        began = time.monotonic()
        with self.log_file.open("wb") as log:  # this start's output only
            self._process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start",
                 "--host", self.host, "--port", str(self.port), "--analytics-off"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # survives the shell that started it
            )  # fmt: skip
        pid = self._process.pid
        self.pid_file.write_text(f"{pid}\n")
        self.url_file.write_text(f"{self.api_url}\n")
        deadline = began + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._forget()
                raise PrefectServerError(
                    f"the Prefect server failed to start (exit code {self._process.returncode}); "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if healthy(self.api_url):
                return StartResult(pid, self.api_url, time.monotonic() - began, False)
            time.sleep(0.2)
        self._terminate(pid, grace_s=10.0)
        self._forget()
        raise PrefectServerError(
            f"the Prefect server did not answer on {self.api_url} within {timeout_s:.0f}s; "
            f"last lines of {self.log_file}:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> str:
        current = self.status()
        if current.state is ServerState.STOPPED:
            return "Prefect server is not running; nothing to stop"
        if current.state is ServerState.DIED:
            self._forget()
            return f"{current.message}; removed its stale pid file"
        assert current.pid is not None
        forced = self._terminate(current.pid, grace_s=timeout_s)
        self._forget()
        how = "killed after it ignored SIGTERM" if forced else "stopped cleanly"
        return f"Prefect server (pid {current.pid}) {how}"

    def status(self) -> ServerStatus:
        pid = read_pid(self.pid_file)
        url = self.running_url()
        if pid is None:
            return ServerStatus(ServerState.STOPPED, None, None, "Prefect server is stopped")
        if not _is_prefect_server(pid):
            return ServerStatus(
                ServerState.DIED,
                pid,
                url,
                f"Prefect server is not running: pid {pid} exited without a clean stop",
            )
        if url and healthy(url):
            return ServerStatus(
                ServerState.RUNNING,
                pid,
                url,
                f"Prefect server is running (pid {pid}): PREFECT_API_URL={url}, "
                f"UI {url.removesuffix('/api')}, log {self.log_file}",
            )
        return ServerStatus(
            ServerState.NOT_ANSWERING,
            pid,
            url,
            f"Prefect server process {pid} is alive but does not answer on {url}",
        )

    def running_url(self) -> str | None:
        """The URL recorded by the last start (it may be another port than this object's)."""
        try:
            return self.url_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self.log_file, lines)

    # -- helpers -------------------------------------------------------------------------

    def _forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        self.url_file.unlink(missing_ok=True)

    def _terminate(self, pid: int, grace_s: float) -> bool:
        """SIGTERM to the server's process group (uvicorn and its services), then SIGKILL
        after grace_s. Returns True when SIGKILL was needed."""
        alive = partial(_is_prefect_server, pid)
        return terminate(pid, grace_s, alive=alive, reap=self._reap, send=signal_group)

    def _reap(self) -> None:
        # A server started by this very process must be waited for, or it stays a zombie.
        if self._process is not None:
            self._process.poll()


def server_dir(settings: Settings) -> Path:
    return settings.data_dir / "prefect-server"


def running_server_url(settings: Settings) -> str | None:
    """The local server's API URL when its process is ours, alive and healthy."""
    server = LocalPrefectServer.from_settings(settings)
    pid = read_pid(server.pid_file)
    url = server.running_url()
    if pid is None or url is None or not _is_prefect_server(pid):
        return None
    return url if healthy(url) else None


def use_prefect_server(settings: Settings) -> str | None:
    """Point Prefect at a running server; call before Prefect is imported (it reads its
    settings then). Returns the API URL in use, or None for the temporary server."""
    for name, value in QUIET_PREFECT.items():
        os.environ.setdefault(name, value)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(known, _NoConsoleTracebacks) for known in handler.filters):
            handler.addFilter(_NoConsoleTracebacks())
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return configured
    url = running_server_url(settings)
    if url:
        os.environ["PREFECT_API_URL"] = url
    return url


class _NoConsoleTracebacks(logging.Filter):
    """Prefect logs a failed task or flow run with its traceback, and its run loggers
    propagate to the CLI's console handler: the CLI promises one line (`Error: ...`)
    unless --verbose (DEBUG). The traceback still reaches the Prefect server: its API
    handler sits on the run logger itself, so it has the record before this filter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("prefect.") and not logging.getLogger().isEnabledFor(
            logging.DEBUG
        ):
            record.exc_info = record.exc_text = record.stack_info = None
        return True


def _is_prefect_server(pid: int) -> bool:
    """Alive, not a zombie, and running `prefect server start`."""
    return runs_command(pid, b"prefect", b"server", b"start")
