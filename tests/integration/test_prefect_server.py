"""`sessionflow prefect start|status|stop`: a local Prefect server that the flow commands
find under the data dir; without it, Prefect's temporary server, quietly."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import free_port, run_cli, temporary_prefect_env

EMPTY_DAY = "2026-09-01"
# Prefect's log lines ("... | ERROR | ...") and Python's ("... ERROR name: ...").
ERROR_LINE = re.compile(r"(\bERROR\b)")


def test_local_server_is_found_and_the_temporary_one_is_the_quiet_fallback(
    tmp_path: Path,
) -> None:
    # No PREFECT_API_URL: only the data dir's server.
    env = temporary_prefect_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data"),
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    port = str(free_port())
    assert run_cli(env, "prefect", "status").returncode == 3
    started = run_cli(env, "prefect", "start", "--port", port, timeout=240)
    try:
        assert started.returncode == 0, started.stderr
        assert f"PREFECT_API_URL=http://127.0.0.1:{port}/api" in started.stdout
        again = run_cli(env, "prefect", "start", "--port", port)
        assert "already running" in again.stdout
        status = run_cli(env, "prefect", "status")
        assert status.returncode == 0 and "is running" in status.stdout

        on_server = run_cli(env, "run", "daily", "--date", EMPTY_DAY)
        assert on_server.returncode in (0, 4), on_server.stderr  # 4: empty day's checks
        assert f"{EMPTY_DAY}: not built yet: built" in on_server.stdout
        assert "temporary server" not in on_server.stderr
        assert (tmp_path / "data" / "prefect-server" / "server.url").exists()
    finally:
        stopped = run_cli(env, "prefect", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert "nothing to stop" in run_cli(env, "prefect", "stop").stdout
    assert run_cli(env, "prefect", "status").returncode == 3

    fallback = run_cli(env, "run", "daily", "--date", EMPTY_DAY, "--force")
    assert fallback.returncode in (0, 4), fallback.stderr
    assert "Starting temporary server" in fallback.stderr
    assert f"{EMPTY_DAY}: forced: built" in fallback.stdout
    output = fallback.stdout + fallback.stderr
    errors = [line for line in output.splitlines() if ERROR_LINE.search(line)]
    assert not errors, errors  # e.g. "Failed to send telemetry": analytics are off
