"""While Kafka is away the collector buffers (bounded), then answers 503; nothing is lost."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from pipeline.config import load_settings
from pipeline.kafka.broker import LocalBroker
from pipeline.kafka.topics import ensure_topics
from tests.conftest import free_port
from tests.integration.conftest import collector_env, events_of, read_topic, start_collector

EVENT = {"name": "page_view", "url": "https://shop.example/"}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def test_buffer_full_answers_503_and_shutdown_spills(tmp_path: Path) -> None:
    dead_port = free_port()  # nothing listens here
    env = collector_env(
        f"127.0.0.1:{dead_port}", tmp_path / "data", free_port(), "outage",
        SESSIONFLOW_COLLECTOR__BUFFER_MAX_EVENTS="5",
    )  # fmt: skip
    collector = start_collector(env, tmp_path / "collector.log")
    try:
        statuses = [
            httpx.post(
                f"{collector.url}/api/event", json=EVENT, headers={"User-Agent": CHROME}
            ).status_code
            for _ in range(7)
        ]
        assert statuses == [202] * 5 + [503] * 2
        refused = httpx.post(
            f"{collector.url}/api/event", json=EVENT, headers={"User-Agent": CHROME}
        )
        assert refused.json()["reason"] == "kafka_unavailable"
        assert refused.headers["retry-after"] == "5"
        health = httpx.get(f"{collector.url}/health")
        assert (health.status_code, health.json()["pending"]) == (503, 5)
    finally:
        collector.stop()
    spilled = list((tmp_path / "data" / "spill").glob("collector-*.jsonl"))
    assert len(spilled) == 1
    lines = [json.loads(line) for line in spilled[0].read_text().splitlines()]
    assert len(lines) == 5 and all(line["event_name"] == "page_view" for line in lines)
    assert "5 accepted events were not acknowledged" in collector.log_text()


def test_events_buffered_during_an_outage_arrive_when_kafka_returns(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    broker = LocalBroker(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    topic_prefix = f"late.{uuid.uuid4().hex[:8]}"
    env = collector_env(broker.bootstrap, tmp_path / "data", free_port(), topic_prefix)
    collector = start_collector(env, tmp_path / "collector.log")
    try:
        for _ in range(3):
            response = httpx.post(
                f"{collector.url}/api/event", json=EVENT, headers={"User-Agent": CHROME}
            )
            assert response.status_code == 202
        broker.start()
        ensure_topics(load_settings(environ=env).kafka)
        events = events_of(read_topic(broker.bootstrap, f"{topic_prefix}.events", 3, timeout_s=60))
        assert len(events) == 3
        assert httpx.get(f"{collector.url}/health").json()["delivered"] == 3
    finally:
        collector.stop()
        broker.stop()
