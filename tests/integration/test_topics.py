from __future__ import annotations

from pipeline.config import Settings
from pipeline.kafka.topics import HOUR_MS, ensure_topics


def test_topics_are_created_once_with_configured_settings(kafka_settings: Settings) -> None:
    kafka = kafka_settings.kafka
    first = {report.name: report for report in ensure_topics(kafka)}
    assert set(first) == {kafka.events_topic, kafka.dlq_topic}
    assert first[kafka.events_topic].created
    assert first[kafka.events_topic].partitions == 4
    assert first[kafka.events_topic].retention_ms == kafka.retention_hours * HOUR_MS
    assert first[kafka.dlq_topic].partitions == kafka.dlq_partitions
    assert first[kafka.dlq_topic].retention_ms == kafka.dlq_retention_hours * HOUR_MS

    again = {report.name: report for report in ensure_topics(kafka)}
    assert not any(report.created for report in again.values())
    assert all(report.notes == () for report in again.values())


def test_existing_topic_follows_retention_but_keeps_partitions(kafka_settings: Settings) -> None:
    ensure_topics(kafka_settings.kafka)
    changed = kafka_settings.kafka.model_copy(update={"retention_hours": 6, "partitions": 8})
    report = {r.name: r for r in ensure_topics(changed)}[changed.events_topic]
    assert report.retention_ms == 6 * HOUR_MS
    assert report.partitions == 4
    assert any("partitions" in note for note in report.notes)
    assert {r.name: r for r in ensure_topics(changed)}[changed.events_topic].retention_ms == (
        6 * HOUR_MS
    )
