"""`sessionflow demo`: the main job, end to end, on embedded defaults.

For now a thin but real slice of the pipeline:
  1. produce a few thousand canonical events to the Kafka topic;
  2. consume them back with a consumer group;
  3. write them to the Parquet lake (lake/events/event_date=YYYY-MM-DD/);
  4. count them with DuckDB, reading that Parquet.
Offsets are committed only after the Parquet files are in place.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaConsumer, TopicPartition

from pipeline.config import Settings
from pipeline.errors import SessionflowError
from pipeline.event_schema import canonical_arrow_schema
from pipeline.producer import EventProducer

DEMO_GROUP = "sessionflow-demo"
CATCH_UP_TIMEOUT_S = 120.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoReport:
    run_id: str
    produced: int
    consumed: int
    files_written: int
    duckdb_run_events: int
    duckdb_lake_events: int


def demo_events(run_id: str, count: int, sites: list[str], now: datetime) -> list[dict[str, Any]]:
    """Simple canonical events over the last hour; the event_id prefix marks the run."""
    rng = random.Random(run_id)
    visitors = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(max(1, count // 8))]
    events = []
    for index in range(count):
        is_purchase = rng.random() < 0.03
        events.append(
            {
                "event_id": f"demo-{run_id}-{index}",
                "event_name": "purchase" if is_purchase else "page_view",
                "event_ts": (now - timedelta(seconds=rng.uniform(0, 3600))).isoformat(),
                "site_id": rng.choice(sites),
                "visitor_id": rng.choice(visitors),
                "page_url": f"https://{sites[0]}/products/{rng.randint(1, 40)}",
                "value": round(rng.uniform(10, 200), 2) if is_purchase else None,
                "currency": "USD" if is_purchase else None,
            }
        )
    return events


def run_demo(settings: Settings, count: int, say: Say) -> DemoReport:
    run_id = uuid.uuid4().hex[:12]
    topic = settings.kafka.events_topic
    events = demo_events(run_id, count, settings.sites, datetime.now(UTC))
    with EventProducer(settings.kafka) as producer:
        producer.send_all(events)
    say(f"produced {len(events)} events to {topic} (run {run_id})")

    consumed, files = _consume_into_lake(settings)
    say(f"consumed {consumed} events from {topic}; wrote {files} Parquet files")

    run_events, lake_events = _duckdb_counts(settings.lake_dir, f"demo-{run_id}-")
    return DemoReport(run_id, len(events), consumed, files, run_events, lake_events)


def _consume_into_lake(settings: Settings) -> tuple[int, int]:
    topic = settings.kafka.events_topic
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=DEMO_GROUP,
        client_id="sessionflow-demo",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        end_offsets = consumer.end_offsets(partitions)
        rows_by_partition: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while any(consumer.position(tp) < end_offsets[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise SessionflowError(f"demo consumer did not catch up on {topic} in time")
            for tp, records in consumer.poll(timeout_ms=1000).items():
                rows_by_partition[tp.partition].extend(
                    (record.offset, json.loads(record.value)) for record in records
                )
        files = sum(
            _write_partition_files(settings.lake_dir, partition, rows)
            for partition, rows in rows_by_partition.items()
        )
        consumer.commit()  # only now: the files are durable
        return sum(len(rows) for rows in rows_by_partition.values()), files
    finally:
        consumer.close(autocommit=False)


def _write_partition_files(
    lake_dir: Path, partition: int, rows: list[tuple[int, dict[str, Any]]]
) -> int:
    """One file per Kafka partition and event date, named by its offset range, so a replay
    of the same offsets rewrites the same file instead of adding one."""
    by_date: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for offset, event in rows:
        event["event_ts"] = datetime.fromisoformat(event["event_ts"]).astimezone(UTC)
        by_date[event["event_ts"].date().isoformat()].append((offset, event))
    schema = canonical_arrow_schema()
    for event_date, dated in by_date.items():
        first, last = dated[0][0], dated[-1][0]
        directory = lake_dir / "events" / f"event_date={event_date}"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"demo-p{partition:03d}-{first:012d}-{last:012d}.parquet"
        staging = target.with_suffix(".parquet.tmp")
        table = pa.Table.from_pylist([event for _, event in dated], schema=schema)
        pq.write_table(table, staging, compression="zstd")
        staging.replace(target)  # readers never see a half-written file
    return len(by_date)


def _duckdb_counts(lake_dir: Path, run_prefix: str) -> tuple[int, int]:
    pattern = str(lake_dir / "events" / "event_date=*" / "*.parquet")
    row = duckdb.execute(
        "SELECT count(*) FILTER (WHERE starts_with(event_id, ?)), count(*) "
        "FROM read_parquet(?, hive_partitioning = true)",
        [run_prefix, pattern],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
