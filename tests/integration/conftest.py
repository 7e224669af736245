"""A running collector (`sessionflow collect` as a real process) on the test broker."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import clean_env, free_port


@dataclass
class RunningCollector:
    url: str
    env: dict[str, str]
    log_path: Path
    topic: str
    bootstrap: str
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def collector_env(
    bootstrap: str, data_dir: Path, port: int, topic_prefix: str, **extra: str
) -> dict[str, str]:
    return clean_env(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        SESSIONFLOW_DATA_DIR=str(data_dir),
        SESSIONFLOW_SITES='["shop.example", "blog.example"]',
        SESSIONFLOW_KAFKA__EVENTS_TOPIC=f"{topic_prefix}.events",
        SESSIONFLOW_KAFKA__DLQ_TOPIC=f"{topic_prefix}.events.dlq",
        SESSIONFLOW_KAFKA__PARTITIONS="3",
        SESSIONFLOW_COLLECTOR__PORT=str(port),
        **extra,
    )


def start_collector(env: dict[str, str], log_path: Path, wait_s: float = 60.0) -> RunningCollector:
    port = env["SESSIONFLOW_COLLECTOR__PORT"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "--verbose", "collect"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"collector exited: {log_path.read_text()}")
        try:
            httpx.get(f"{url}/health", timeout=1.0)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"collector did not start: {log_path.read_text()}")
    return RunningCollector(
        url, env, log_path, env["SESSIONFLOW_KAFKA__EVENTS_TOPIC"],
        env["KAFKA_BOOTSTRAP_SERVERS"], process,
    )  # fmt: skip


@contextmanager
def running_collector(
    bootstrap: str, directory: Path, **settings: str
) -> Iterator[RunningCollector]:
    """A collector on topics of its own; `settings` add SESSIONFLOW_ variables."""
    defaults = {
        # Tests stand in for a reverse proxy on loopback: the client address comes from
        # their X-Forwarded-For.
        "SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES": '["127.0.0.1"]',
        "SESSIONFLOW_PRIVACY__COUNTRY_HEADER": "CF-IPCountry",
    }
    env = collector_env(
        bootstrap,
        directory / "data",
        free_port(),
        f"test.{uuid.uuid4().hex[:10]}",
        **{**defaults, **settings},
    )
    running = start_collector(env, directory / "collector.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def collector(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningCollector]:
    """A collector of the test's own, on topics of its own."""
    with running_collector(kafka_bootstrap, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def module_collector(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCollector]:
    """One collector shared by a module's tests that only look at HTTP answers."""
    with running_collector(kafka_bootstrap, tmp_path_factory.mktemp("collector")) as running:
        yield running


def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[bytes]:
    """Raw message values (and keys, appended) from every partition of `topic`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout_s
        partitions: set[int] | None = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.1)
        assert partitions, f"topic {topic} does not exist"
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen: list[bytes] = []
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                seen.extend(record.key + b"\t" + record.value for record in records)
            if len(seen) >= expected:
                # Keep reading briefly: more than expected would be a bug worth seeing.
                for records in consumer.poll(timeout_ms=500).values():
                    seen.extend(record.key + b"\t" + record.value for record in records)
                break
        return seen
    finally:
        consumer.close()


def events_of(messages: list[bytes]) -> list[dict[str, object]]:
    return [json.loads(message.split(b"\t", 1)[1]) for message in messages]


# A page server's answer to a path: (status, content type, body).
Respond = Callable[[str], tuple[int, str, bytes]]


@contextmanager
def serve_shop_pages(respond: Respond) -> Iterator[str]:
    """An origin of shop.example on loopback (the browser tests map the name to it): each
    GET is answered by `respond(path)`. Yields the origin's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = respond(urlsplit(self.path).path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://shop.example:{server.server_address[1]}"
    finally:
        server.shutdown()
