from __future__ import annotations

from pipeline.config import Settings
from tests.conftest import run_cli, settings_env


def test_demo_runs_twice_and_counts_its_events(kafka_settings: Settings) -> None:
    env = settings_env(kafka_settings)
    lake_total = 0
    for run in (1, 2):
        result = run_cli(env, "demo", "--events-per-day", "2000")
        assert result.returncode == 0, f"run {run}: {result.stdout} {result.stderr}"
        generated = int(result.stdout.split("generated ")[1].split(" ")[0])
        duplicates = int(result.stdout.split("(")[1].split(" duplicates")[0])
        distinct = generated - duplicates
        lake_total += distinct
        assert f"produced {generated} events; rejected 0" in result.stdout
        assert f"{duplicates} duplicates dropped" in result.stdout
        assert f"DuckDB reads {distinct} events of this run" in result.stdout
        assert f"({lake_total} events in " in result.stdout
