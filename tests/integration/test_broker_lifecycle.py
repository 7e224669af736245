"""`sessionflow broker start|stop|status` as a user runs it, on a broker of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import clean_env, free_port, run_cli

pytestmark = pytest.mark.kafka
EXIT_NOT_RUNNING = 3


def broker_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        SESSIONFLOW_DATA_DIR=str(data_dir),
        SESSIONFLOW_KAFKA__LOCAL_PORT=str(free_port()),
        SESSIONFLOW_KAFKA__LOCAL_CONTROLLER_PORT=str(free_port()),
        **extra,
    )


def sessionflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args, timeout=180)


def pid_of(output: str) -> int:
    return int(output.split("(pid ", 1)[1].split(")", 1)[0])


def test_status_tells_the_truth_in_every_state(tmp_path: Path) -> None:
    env = broker_env(tmp_path / "data")
    try:
        started = sessionflow(env, "broker", "start")
        assert started.returncode == 0, started.stderr
        assert "broker started (pid" in started.stdout
        pid = pid_of(started.stdout)

        status = sessionflow(env, "broker", "status")
        assert (status.returncode, f"running (pid {pid})" in status.stdout) == (0, True)

        again = sessionflow(env, "broker", "start")
        assert again.returncode == 0
        assert f"already running (pid {pid})" in again.stdout

        os.kill(pid, signal.SIGKILL)
        for _ in range(50):
            status = sessionflow(env, "broker", "status")
            if status.returncode != 0:
                break
            time.sleep(0.1)
        assert status.returncode == EXIT_NOT_RUNNING
        assert "killed or crashed" in status.stdout

        restarted = sessionflow(env, "broker", "start")
        assert restarted.returncode == 0, restarted.stderr
        assert "broker started" in restarted.stdout

        stopped = sessionflow(env, "broker", "stop")
        assert "stopped cleanly" in stopped.stdout
        status = sessionflow(env, "broker", "status")
        assert status.returncode == EXIT_NOT_RUNNING
        assert "broker is stopped" in status.stdout
    finally:
        sessionflow(env, "broker", "stop")


def test_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    env = broker_env(tmp_path / "data")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["SESSIONFLOW_KAFKA__LOCAL_PORT"])))
        squatter.listen()
        result = sessionflow(env, "broker", "start")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: port 127.0.0.1:{env['SESSIONFLOW_KAFKA__LOCAL_PORT']} is already in use by "
        "another process; stop it or set kafka.local_port / kafka.local_controller_port"
    ]


def test_java_missing(tmp_path: Path) -> None:
    env = broker_env(tmp_path / "data", PATH=str(tmp_path / "empty-bin"))
    result = sessionflow(env, "broker", "start")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: Java not found on PATH")
    assert len(result.stderr.strip().splitlines()) == 1


def test_maven_missing_when_jars_are_not_cached(tmp_path: Path) -> None:
    only_java = tmp_path / "bin"
    only_java.mkdir()
    java = subprocess.run(["which", "java"], capture_output=True, text=True).stdout.strip()
    (only_java / "java").symlink_to(os.path.realpath(java))
    env = broker_env(
        tmp_path / "data",
        PATH=str(only_java),
        SESSIONFLOW_KAFKA__JAR_CACHE_DIR=str(tmp_path / "empty-cache"),
    )
    result = sessionflow(env, "broker", "start")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: Maven (mvn) not found on PATH")


def test_failed_start_shows_the_log_tail(tmp_path: Path) -> None:
    # A heap no machine has: the JVM refuses to start, and the user sees why.
    env = broker_env(tmp_path / "data", SESSIONFLOW_KAFKA__LOCAL_HEAP_MB="100000000")
    result = sessionflow(env, "broker", "start")
    assert result.returncode == 1
    first, *tail = result.stderr.strip().splitlines()
    assert first.startswith("Error: Kafka broker failed to start (exit code")
    assert any("heap" in line.lower() for line in tail)
    assert sessionflow(env, "broker", "status").returncode == EXIT_NOT_RUNNING


def test_external_cluster_starts_nothing_local(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = broker_env(tmp_path / "data", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    result = sessionflow(env, "broker", "start")
    assert result.returncode == 0
    assert "no local broker started" in result.stdout
    assert not (tmp_path / "data").exists()
    status = sessionflow(env, "broker", "status")
    assert status.returncode == 0
    assert f"cluster at {kafka_bootstrap}" in status.stdout
