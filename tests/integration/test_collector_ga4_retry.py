"""A GA4 MP request retried by its client lands once: through a running collector, the
real broker and the real consumer into the lake. Two identical events of one request
stay two."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings, load_settings
from pipeline.events.timestamps import now_micros
from pipeline.lake.consumer import LakeConsumer
from pipeline.lake.paths import LakeLayout
from tests.integration.conftest import RunningCollector

GA4 = "/mp/collect?measurement_id=shop.example"


def post_ga4(collector: RunningCollector, body: dict[str, Any]) -> None:
    response = httpx.post(f"{collector.url}{GA4}", json=body, timeout=10)
    assert response.status_code == 204, response.text


def wait_until_delivered(collector: RunningCollector, expected: int, timeout_s: float) -> None:
    """Until Kafka has acknowledged `expected` events of the collector (bounded)."""
    deadline = time.monotonic() + timeout_s
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = httpx.get(f"{collector.url}/health", timeout=5).json()
        if health["delivered"] >= expected and health["pending"] == 0:
            break
        time.sleep(0.1)  # poll interval, not synchronisation: the condition decides
    assert (health.get("delivered"), health.get("pending")) == (expected, 0), health


def consumer_settings(collector: RunningCollector) -> Settings:
    """The collector's own settings (broker, topics, data dir), with a group of its own."""
    settings = load_settings(environ=collector.env)
    group = settings.consumer.model_copy(
        update={"group_id": f"{settings.kafka.events_topic}.group"}
    )
    return settings.model_copy(update={"consumer": group})


def lake_events(settings: Settings) -> list[dict[str, Any]]:
    files = LakeLayout(settings.lake_dir).event_files()
    assert files, "the consumer wrote no lake file"
    table = pa.concat_tables(
        pq.read_table(path, columns=["event_id", "event_name"]) for path in files
    )
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def test_a_retried_ga4_request_lands_once_and_identical_events_stay_two(
    collector: RunningCollector,
) -> None:
    sent_at = now_micros() - 60_000_000
    retried = {
        "client_id": "1234567.7654321",
        "timestamp_micros": sent_at,
        "events": [
            {"name": "page_view", "params": {"page_location": "https://shop.example/a"}},
            {"name": "add_to_cart", "params": {"value": 3.5, "currency": "USD"}},
        ],
    }
    scroll = {"name": "scroll", "params": {"page_location": "https://shop.example/a"}}
    identical_pair = {
        "client_id": "1234567.7654321",
        "timestamp_micros": sent_at + 1_000_000,
        "events": [scroll, scroll],
    }
    post_ga4(collector, retried)
    post_ga4(collector, retried)  # the client's retry: the same body again
    post_ga4(collector, identical_pair)
    wait_until_delivered(collector, 6, timeout_s=60)

    settings = consumer_settings(collector)
    totals = LakeConsumer(settings, instance_id="ga4-retry").run(until_caught_up=True)
    assert (totals.events, totals.duplicates, totals.rejected) == (6, 2, 0)

    rows = lake_events(settings)
    assert Counter(row["event_name"] for row in rows) == {
        "page_view": 1, "add_to_cart": 1, "scroll": 2,
    }  # fmt: skip
    assert len({row["event_id"] for row in rows}) == 4
