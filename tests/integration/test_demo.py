from __future__ import annotations

import os
import subprocess
import sys

from pipeline.config import Settings


def test_demo_runs_twice_and_counts_its_events(kafka_settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONFLOW_", "KAFKA_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_settings.kafka.bootstrap,
        SESSIONFLOW_DATA_DIR=str(kafka_settings.data_dir),
        SESSIONFLOW_KAFKA__EVENTS_TOPIC=kafka_settings.kafka.events_topic,
        SESSIONFLOW_KAFKA__DLQ_TOPIC=kafka_settings.kafka.dlq_topic,
    )
    for run, lake_total in ((1, 2000), (2, 4000)):
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "demo", "--events", "2000"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"run {run}: {result.stderr}"
        assert "produced 2000 events" in result.stdout
        assert (
            f"DuckDB reads 2000 events of this run from Parquet under "
            f"{kafka_settings.lake_dir} ({lake_total} in the lake in all)"
        ) in result.stdout
