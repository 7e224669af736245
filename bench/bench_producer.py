"""Row 5: the producer SDK's events/s against raw kafka-python on pre-encoded bytes.

Both sides produce the same events to the same topic with the same settings (an
EventProducer's defaults: acks=all, idempotent, its compression, linger and batch size),
interleaved in the same run. Raw gets the keys and values already encoded and kafka-python's
default partitioner; the SDK is handed dicts and encodes, keys and partitions them itself.
"""

from __future__ import annotations

import inspect
import statistics
import uuid
from typing import Any

from kafka import KafkaProducer

from bench.common import REPEATS, Figure, command_for, timed
from pipeline.config import KafkaSettings, load_settings
from pipeline.kafka.producer import EventProducer, encode_event, partition_key, producer_settings
from pipeline.kafka.topics import ensure_topics

NEEDS_BROKER = True
EVENTS = 100_000
QUICK_EVENTS = 20_000
VISITORS = 5_000


def sample_events(count: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"bench-{i}",
            "event_name": "page_view",
            "event_ts": "2026-11-20T10:00:00.000000Z",
            "site_id": "shop.example",
            "visitor_id": f"{i % VISITORS:032x}",
            "page_url": f"https://shop.example/products/{i % 300}",
            "device_category": "mobile",
        }
        for i in range(count)
    ]


def sdk_defaults() -> dict[str, Any]:
    """EventProducer's keyword defaults for its KafkaProducer (compression, linger, batch
    size, timeouts: the keywords of producer_settings), not its validation options."""
    kafka_options = inspect.signature(producer_settings).parameters
    parameters = inspect.signature(EventProducer).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name in kafka_options
    }


def raw_producer(kafka: KafkaSettings, **options: Any) -> KafkaProducer:
    """kafka-python with an EventProducer's settings (`options` over its defaults)."""
    return KafkaProducer(**producer_settings(kafka, **{**sdk_defaults(), **options}))


def run(bootstrap: str, quick: bool) -> list[Figure]:
    count = QUICK_EVENTS if quick else EVENTS
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"bench.{uuid.uuid4().hex[:8]}"}  # fmt: skip
    kafka = load_settings(environ=env).kafka
    ensure_topics(kafka)
    events = sample_events(count)
    encoded = [(partition_key(e), encode_event(e)) for e in events]

    def raw() -> int:
        producer = raw_producer(kafka)
        for key, value in encoded:
            producer.send(kafka.events_topic, key=key, value=value)
        producer.flush()
        producer.close()
        return len(encoded)

    def sdk() -> int:
        with EventProducer(kafka) as producer:
            return producer.send_all(events)

    raw_rates: list[float] = []
    sdk_rates: list[float] = []
    for _ in range(REPEATS):  # interleaved, so drift hits both alike
        for rates, action in ((raw_rates, raw), (sdk_rates, sdk)):
            items, seconds = timed(action)
            rates.append(items / seconds)
    defaults = sdk_defaults()
    return [
        Figure(
            row="5",
            what=f"producer SDK EventProducer.send_all, {count:,} event dicts",
            project=statistics.median(sdk_rates),
            baseline=statistics.median(raw_rates),
            unit="events/s",
            baseline_what="raw kafka-python on pre-encoded bytes",
            target="≥ 0.9",
            command=command_for("producer"),
            note=(
                f"same settings both sides (acks=all, idempotent, "
                f"{defaults['compression']}, linger {defaults['linger_ms']} ms, batch "
                f"{defaults['batch_size'] // 1024} KiB), {VISITORS:,} visitor keys, median of "
                f"{REPEATS} interleaved runs. The SDK encodes with orjson and memoises "
                "kafka-python's murmur2 partitioning per key (same partitions); raw uses "
                "kafka-python's default partitioner, which hashes every key in pure Python."
            ),
        )
    ]
