"""How far the lake's consumer group is behind the events topic."""

from __future__ import annotations

import logging

from kafka import KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka.client import client_options


def consumer_lag(settings: Settings, timeout_s: float = 5.0) -> int | None:
    """Records on the events topic not yet committed by the group; None when no broker
    answers within `timeout_s` (status must not hang on a stopped broker)."""
    timeout_ms = int(timeout_s * 1000)
    # A stopped broker is an answer here, not an error worth a screen of retries.
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        return _lag(settings, timeout_ms)
    finally:
        kafka_log.setLevel(level)


def _lag(settings: Settings, timeout_ms: int) -> int | None:
    try:
        consumer = KafkaConsumer(
            **client_options(settings.kafka),
            group_id=settings.consumer.group_id,
            client_id="sessionflow-status",
            enable_auto_commit=False,
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except Exception:
        return None
    try:
        partitions = consumer.partitions_for_topic(settings.kafka.events_topic) or set()
        topic_partitions = [TopicPartition(settings.kafka.events_topic, p) for p in partitions]
        if not topic_partitions:
            return 0
        ends = consumer.end_offsets(topic_partitions, timeout_ms=timeout_ms)
        starts = consumer.beginning_offsets(topic_partitions, timeout_ms=timeout_ms)
        lag = 0
        for tp in topic_partitions:
            committed = consumer.committed(tp, timeout_ms=timeout_ms)
            lag += ends[tp] - (committed if committed is not None else starts[tp])
        return lag
    except Exception:
        return None
    finally:
        consumer.close()
