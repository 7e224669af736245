"""End-to-end consumer events/s against raw kafka-python consumption of the same topic.

Both read the same 200k-record topic from the beginning, in the same run. Raw: a
KafkaConsumer assigned to every partition, nothing done with the records. End to end:
LakeConsumer --until-caught-up (group join, validation, dedup, sessionizer, Parquet
writes, snapshots, commits), with a fresh group and lake each run.
"""

from __future__ import annotations

import tempfile
import uuid
from datetime import date
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from bench.common import median_rate, report, timed
from pipeline.config import Settings, load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.kafka.produce import produce_file
from pipeline.kafka.topics import ensure_topics
from pipeline.lake.consumer import LakeConsumer

EVENTS = 200_000


def run(bootstrap: str) -> str:
    topic = f"bench.consume.{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        base = _settings(bootstrap, topic, Path(directory) / "setup", "setup")
        ensure_topics(base.kafka)
        config = GeneratorConfig(days=1, start=date(2026, 11, 1), events_per_day=EVENTS)
        files = write_dataset(config, Path(directory) / "generated")
        produced = produce_file(base, files.events_path, lambda line: None).produced

        def raw() -> int:
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, max_poll_records=5_000)
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            seen = 0
            while seen < produced:
                seen += sum(len(records) for records in consumer.poll(timeout_ms=1000).values())
            consumer.close()
            return seen

        def end_to_end() -> int:
            run_id = uuid.uuid4().hex[:8]
            settings = _settings(bootstrap, topic, Path(directory) / run_id, run_id)
            return LakeConsumer(settings, say=lambda line: None).run(until_caught_up=True).events

        raw_rate = median_rate(lambda: timed(raw))
        e2e_rate = median_rate(lambda: timed(end_to_end))
    return report(
        f"Consumer ({produced:,} records, 6 partitions, from the beginning)",
        [
            ("raw kafka-python consume", raw_rate, "events/s"),
            ("sessionflow consume --until-caught-up", e2e_rate, "events/s"),
        ],
        ("end to end / raw", e2e_rate / raw_rate),
    )


def _settings(bootstrap: str, topic: str, data_dir: Path, group: str) -> Settings:
    return load_settings(
        environ={
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SESSIONFLOW_DATA_DIR": str(data_dir),
            "SESSIONFLOW_KAFKA__EVENTS_TOPIC": topic,
            "SESSIONFLOW_KAFKA__DLQ_TOPIC": f"{topic}.dlq",
            "SESSIONFLOW_CONSUMER__GROUP_ID": f"bench-{group}",
            "SESSIONFLOW_SESSIONIZATION__ALLOWED_LATENESS_MINUTES": "180",
        }
    )
