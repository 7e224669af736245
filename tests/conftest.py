"""Shared fixtures. The Kafka broker is real: started once per test session from the
project's own infra/kafka (on free ports, in a temporary directory), or taken from
KAFKA_BOOTSTRAP_SERVERS. Broker tests never skip: if the broker cannot start, they error."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import Settings, load_settings
from pipeline.kafka.broker import LocalBroker
from pipeline.warehouse.prefect_server import LocalPrefectServer

_kafka_outcomes: dict[str, int] = {}


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without sessionflow or Kafka settings, plus `values`.

    `run_cli` gives flow commands the test session's one Prefect server (see
    `_SharedPrefect`); `temporary_prefect_env` keeps Prefect's temporary server instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONFLOW_", "KAFKA_"))}
    env.update(values)
    return env


def temporary_prefect_env(**values: str) -> dict[str, str]:
    """`clean_env`, but flow commands run on Prefect's temporary server (the fallback's
    tests)."""
    return _TemporaryPrefectEnv(clean_env(**values))


class _TemporaryPrefectEnv(dict[str, str]):
    """An environment whose flow commands run on Prefect's temporary server."""


# SESSIONFLOW_TESTS_PREFECT=temporary: every flow command on a temporary server, as
# before the shared one (to compare, or to test the fallback everywhere).
_ALWAYS_TEMPORARY = os.environ.get("SESSIONFLOW_TESTS_PREFECT") == "temporary"


def _runs_flows(args: tuple[str, ...]) -> bool:
    """Whether `sessionflow ARGS` runs a Prefect flow (and so wants a server). Not
    `serve`: its tests are about what it does without one."""
    command, skip = "", False
    for word in args:
        if skip:  # the value of --config
            skip = False
        elif word == "--config":
            skip = True
        elif not word.startswith("-"):
            command = word
            break
    if command == "costs":
        return "--flow" in args or "--rebuild" in args
    return command in ("run", "backfill", "demo")


class _SharedPrefect:
    """One local Prefect server for the whole test session (pipeline.warehouse.prefect_server), in a
    temporary directory on a free port, started by the first flow command `run_cli` runs
    (a session without flows starts none) and stopped by the `shared_prefect_server`
    fixture at the session's end."""

    def __init__(self) -> None:
        self.server: LocalPrefectServer | None = None

    def api_url(self) -> str:
        if self.server is None:
            state = Path(tempfile.mkdtemp(prefix="sessionflow-test-prefect-"))
            server = LocalPrefectServer(state, port=free_port())
            server.start(timeout_s=180.0)
            self.server = server
        return self.server.api_url

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            shutil.rmtree(self.server.state_dir, ignore_errors=True)
            self.server = None


_shared_prefect = _SharedPrefect()


@pytest.fixture(scope="session", autouse=True)
def shared_prefect_server() -> Iterator[_SharedPrefect]:
    """The session's Prefect server (lazy: a run of tests without flows starts none)."""
    try:
        yield _shared_prefect
    finally:
        _shared_prefect.stop()


def settings_env(settings: Settings, **values: str) -> dict[str, str]:
    """An environment that points the CLI at `settings`' broker, data dir and topics;
    `values` add to or override those."""
    pointed = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap,
        "SESSIONFLOW_DATA_DIR": str(settings.data_dir),
        "SESSIONFLOW_KAFKA__EVENTS_TOPIC": settings.kafka.events_topic,
        "SESSIONFLOW_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
    }
    env = clean_env()
    env.update({**pointed, **values})
    return env


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`sessionflow ARGS` as a user runs it, in a process of its own. A flow command
    runs on the session's Prefect server (started on first use), unless `env` names a
    server or asks for the temporary one: 12 s less per run than a temporary server."""
    wants_server = not isinstance(env, _TemporaryPrefectEnv) and not _ALWAYS_TEMPORARY
    if wants_server and "PREFECT_API_URL" not in env and _runs_flows(args):
        env = {**env, "PREFECT_API_URL": _shared_prefect.api_url()}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings on the test broker, with topics of their own so tests cannot interfere."""
    unique = uuid.uuid4().hex[:10]
    return load_settings(
        environ={
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SESSIONFLOW_DATA_DIR": str(tmp_path / "data"),
            "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"test.{unique}.events",
            "SESSIONFLOW_KAFKA__DLQ_TOPIC": f"test.{unique}.events.dlq",
            "SESSIONFLOW_KAFKA__PARTITIONS": "4",
        }
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "kafka" in report.keywords and (report.when == "call" or report.outcome != "passed"):
        _kafka_outcomes[report.outcome] = _kafka_outcomes.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(_kafka_outcomes.items()))
    terminalreporter.write_line(f"tests on the real Kafka broker: {counts or 'none ran'}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # In CI a skipped broker test is a failure: they must run there.
    if os.environ.get("CI") and _kafka_outcomes.get("skipped"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
