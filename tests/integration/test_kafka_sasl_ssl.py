"""A secured cluster: a broker of the test's own with a SASL_SSL listener (a CA and the
broker's certificate made with openssl, SCRAM users created when its storage is
formatted). `topics`, `produce`, the collector and `consume` all go through TLS and SCRAM
(pipeline/kafka/client.py gives every client the same options); a wrong password fails
on one line that holds no password, and the password is in no output or log."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.kafka.broker import ListenerSecurity, LocalBroker
from tests.conftest import clean_env, free_port, run_cli
from tests.integration.conftest import start_collector
from tests.integration.tls_support import make_certificates

pytestmark = pytest.mark.kafka  # its own broker, not the session's

MECHANISM = "SCRAM-SHA-256"
USER = "sessionflow"
# Random per run, so that finding one in a log can only mean it leaked from here.
PASSWORD = f"pw-{secrets.token_hex(12)}"
WRONG_PASSWORD = f"wrong-{secrets.token_hex(12)}"
BROKER_PASSWORD = f"broker-{secrets.token_hex(12)}"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    directory = tmp_path_factory.mktemp("sasl-ssl")
    certificates = make_certificates(directory / "certs")
    security = ListenerSecurity(
        keystore_pem=certificates.keystore_pem,
        ca_pem=certificates.ca_pem,
        users=(("broker", BROKER_PASSWORD), (USER, PASSWORD)),
        mechanism=MECHANISM,
    )
    broker = LocalBroker(
        directory / "kafka", port=free_port(), controller_port=free_port(), security=security
    )
    broker.start(timeout_s=120)
    try:
        yield broker
    finally:
        broker.stop()


def secured_env(broker: LocalBroker, data_dir: Path, **values: str) -> dict[str, str]:
    assert broker.security is not None
    prefix = f"secured.{uuid.uuid4().hex[:8]}"
    return clean_env(
        KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        SESSIONFLOW_DATA_DIR=str(data_dir),
        SESSIONFLOW_SITES='["shop.example"]',
        SESSIONFLOW_KAFKA__EVENTS_TOPIC=f"{prefix}.events",
        SESSIONFLOW_KAFKA__DLQ_TOPIC=f"{prefix}.events.dlq",
        SESSIONFLOW_KAFKA__PARTITIONS="2",
        SESSIONFLOW_KAFKA__SECURITY_PROTOCOL="SASL_SSL",
        SESSIONFLOW_KAFKA__SASL_MECHANISM=MECHANISM,
        SESSIONFLOW_KAFKA__SASL_USERNAME=USER,
        SESSIONFLOW_KAFKA__SSL_CAFILE=str(broker.security.ca_pem),
        **values,
    )


def test_every_command_through_tls_and_scram(secured_broker: LocalBroker, tmp_path: Path) -> None:
    password_file = tmp_path / "kafka-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    env = secured_env(
        secured_broker, tmp_path / "data", SESSIONFLOW_KAFKA__SASL_PASSWORD_FILE=str(password_file)
    )
    # The wrong password from the environment: its bootstrap retries for the 30 s of
    # `topics`' connect timeout, so it runs beside the rest.
    wrong_env = {k: v for k, v in env.items() if k != "SESSIONFLOW_KAFKA__SASL_PASSWORD_FILE"}
    wrong_env["SESSIONFLOW_KAFKA__SASL_PASSWORD"] = WRONG_PASSWORD
    wrong = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "topics"],
        env=wrong_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    outputs: list[str] = []
    try:
        topics = run_cli(env, "topics")
        outputs += [topics.stdout, topics.stderr]
        assert topics.returncode == 0, topics.stderr
        assert "created, 2 partitions" in topics.stdout

        events = tmp_path / "events.jsonl"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        page_view = {"event_name": "page_view", "event_ts": now, "site_id": "shop.example"}
        lines = [{**page_view, "event_id": f"e{n}", "visitor_id": f"v{n}"} for n in range(5)]
        events.write_text("".join(json.dumps(line) + "\n" for line in lines))
        produced = run_cli(env, "produce", "--file", str(events))
        outputs += [produced.stdout, produced.stderr]
        assert produced.returncode == 0, produced.stderr
        assert "produced 5 events" in produced.stdout

        port = free_port()
        collector = start_collector(
            {**env, "SESSIONFLOW_COLLECTOR__PORT": str(port)}, tmp_path / "collector.log"
        )
        try:
            answer = httpx.post(
                f"{collector.url}/api/event",
                content=json.dumps({"name": "page_view", "url": "https://shop.example/"}),
                headers={"User-Agent": IPHONE, "Content-Type": "text/plain"},
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
        finally:
            collector.stop()  # flushes its buffer to Kafka first
        outputs.append(collector.log_text())

        consumed = run_cli(env, "consume", "--until-caught-up", timeout=120)
        outputs += [consumed.stdout, consumed.stderr]
        assert consumed.returncode == 0, consumed.stderr
        assert "consumed 6 events, wrote 6 to the lake" in consumed.stdout

        wrong_out, wrong_err = wrong.communicate(timeout=120)
    finally:
        if wrong.poll() is None:
            wrong.kill()
            wrong.communicate()
    assert wrong.returncode == 1
    error_lines = [line for line in wrong_err.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, wrong_err[-2000:]
    assert f"cannot reach Kafka at {secured_broker.bootstrap}" in error_lines[0]
    assert "SASL user and password" in error_lines[0]
    for text in (wrong_out, wrong_err):
        assert WRONG_PASSWORD not in text and PASSWORD not in text
    logs = [path.read_text(errors="replace") for path in secured_broker.log_dir.rglob("*")
            if path.is_file()]  # fmt: skip
    for text in outputs + logs:
        for secret in (PASSWORD, WRONG_PASSWORD, BROKER_PASSWORD):
            assert secret not in text
    # The broker's own config holds its password: owner-only.
    assert secured_broker.server_properties.stat().st_mode & 0o077 == 0


def test_plaintext_client_is_refused_by_the_secured_listener(
    secured_broker: LocalBroker, tmp_path: Path
) -> None:
    """The listener really is secured: a client without TLS and SCRAM gets no answer."""
    env = clean_env(
        KAFKA_BOOTSTRAP_SERVERS=secured_broker.bootstrap, SESSIONFLOW_DATA_DIR=str(tmp_path)
    )
    status = run_cli(env, "broker", "status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert "does not answer" in status.stdout
