"""`sessionflow demo`: the main job, end to end, on embedded defaults.

1. generate a day of realistic synthetic traffic (duplicates and late events included);
2. produce it to the Kafka topic through the validating producer;
3. run the streaming consumer until it has caught up: validation, de-duplication,
   sessionization, the Parquet lake;
4. count events and sessions with DuckDB, reading that Parquet.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.config import Settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.kafka.produce import produce_file
from pipeline.lake.consumer import LakeConsumer
from pipeline.lake.paths import LakeLayout

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoReport:
    produced: int
    unique_events: int
    consumed: int
    lake_events: int
    lake_sessions: int
    run_events: int


def run_demo(settings: Settings, events_per_day: int, say: Say) -> DemoReport:
    run_id = uuid.uuid4().hex[:8]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    config = GeneratorConfig(
        days=1,
        start=yesterday,
        seed=int(run_id, 16),
        events_per_day=events_per_day,
        sites=tuple(settings.sites),
        currency=settings.currency,
    )
    with tempfile.TemporaryDirectory(prefix="sessionflow-demo-") as scratch:
        files = write_dataset(config, Path(scratch))
        say(
            f"generated {files.events} events for {yesterday} "
            f"({files.duplicates} duplicates, {files.late} late)"
        )
        produced = produce_file(settings, files.events_path, say)
        with files.events_path.open() as lines:
            event_ids = sorted({json.loads(line)["event_id"] for line in lines})
    say(produced.line())

    consumer = LakeConsumer(settings, instance_id="demo", say=say)
    totals = consumer.run(until_caught_up=True)
    say(f"consumer: {totals.line()}")

    lake_events, lake_sessions, run_events = _duckdb_counts(settings, event_ids)
    return DemoReport(
        produced.produced, len(event_ids), totals.events, lake_events, lake_sessions, run_events
    )


def _duckdb_counts(settings: Settings, event_ids: list[str]) -> tuple[int, int, int]:
    files = [str(path) for path in LakeLayout(settings.lake_dir).event_files()]
    con = duckdb.connect()
    con.execute("CREATE TEMP TABLE run_ids AS SELECT unnest(?::VARCHAR[]) AS event_id", [event_ids])
    row = con.execute(
        "SELECT count(*), count(DISTINCT session_id), "
        "count(*) FILTER (WHERE event_id IN (SELECT event_id FROM run_ids)) "
        "FROM read_parquet(?::VARCHAR[], hive_partitioning = true)",
        [files],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])
