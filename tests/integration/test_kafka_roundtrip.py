from __future__ import annotations

import json
from collections import defaultdict

from kafka import KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.producer import EventProducer, partition_key
from pipeline.kafka.topics import ensure_topics


def consume_all(settings: Settings, expected: int) -> list[tuple[int, bytes, dict[str, object]]]:
    topic = settings.kafka.events_topic
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        seen: list[tuple[int, bytes, dict[str, object]]] = []
        for _ in range(60):
            for tp, records in consumer.poll(timeout_ms=500).items():
                seen.extend((tp.partition, r.key, json.loads(r.value)) for r in records)
            if len(seen) >= expected:
                break
        return seen
    finally:
        consumer.close()


def test_round_trip_through_the_real_broker(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings.kafka)
    events = [
        {
            "event_id": f"e{i}",
            "event_name": "page_view",
            "event_ts": "2026-11-01T10:00:00+00:00",
            "site_id": "shop.example",
            "visitor_id": f"v{i % 25}",
        }
        for i in range(1000)
    ]
    with EventProducer(kafka_settings.kafka) as producer:
        producer.send_all(events)

    received = consume_all(kafka_settings, len(events))

    assert sorted(str(e["event_id"]) for _, _, e in received) == sorted(
        str(e["event_id"]) for e in events
    )
    partitions_by_visitor: dict[str, set[int]] = defaultdict(set)
    for partition, key, event in received:
        assert key == partition_key(event)
        partitions_by_visitor[str(event["visitor_id"])].add(partition)
    # One visitor, one partition: that is what lets consumers sessionize in parallel.
    assert all(len(parts) == 1 for parts in partitions_by_visitor.values())
    assert len({p for parts in partitions_by_visitor.values() for p in parts}) > 1
