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
    lake_total = 0
    for run in (1, 2):
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", "demo", "--events-per-day", "2000"],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"run {run}: {result.stdout} {result.stderr}"
        generated = int(result.stdout.split("generated ")[1].split(" ")[0])
        duplicates = int(result.stdout.split("(")[1].split(" duplicates")[0])
        distinct = generated - duplicates
        lake_total += distinct
        assert f"produced {generated} events; rejected 0" in result.stdout
        assert f"{duplicates} duplicates dropped" in result.stdout
        assert f"DuckDB reads {distinct} events of this run" in result.stdout
        assert f"({lake_total} events in " in result.stdout
