"""Producer SDK events/s against raw kafka-python on pre-encoded bytes (the baseline)."""

from __future__ import annotations

import uuid

from kafka import KafkaProducer

from bench.common import median_rate, report, timed
from pipeline.config import load_settings
from pipeline.kafka.producer import EventProducer, encode_event, partition_key
from pipeline.kafka.topics import ensure_topics

EVENTS = 100_000


def sample_events(count: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"bench-{i}",
            "event_name": "page_view",
            "event_ts": "2026-11-20T10:00:00.000000Z",
            "site_id": "shop.example",
            "visitor_id": f"{i % 5000:032x}",
            "page_url": f"https://shop.example/products/{i % 300}",
            "device_category": "mobile",
        }
        for i in range(count)
    ]


def run(bootstrap: str) -> str:
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"bench.{uuid.uuid4().hex[:8]}"}  # fmt: skip
    kafka = load_settings(environ=env).kafka
    ensure_topics(kafka)
    events = sample_events(EVENTS)
    encoded = [(partition_key(e), encode_event(e)) for e in events]

    def raw() -> int:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", compression_type="gzip",
            linger_ms=20, batch_size=256 * 1024,
        )  # fmt: skip
        for key, value in encoded:
            producer.send(kafka.events_topic, key=key, value=value)
        producer.flush()
        producer.close()
        return len(encoded)

    def sdk() -> int:
        with EventProducer(kafka) as producer:
            return producer.send_all(events)

    raw_rate = median_rate(lambda: timed(raw))
    sdk_rate = median_rate(lambda: timed(sdk))
    return report(
        f"Producer SDK ({EVENTS:,} events per run, acks=all, gzip, idempotent)",
        [
            ("raw kafka-python, pre-encoded", raw_rate, "events/s"),
            ("pipeline.producer.EventProducer", sdk_rate, "events/s"),
        ],
        ("SDK / raw", sdk_rate / raw_rate),
    )
