"""Daily aggregation as a Prefect flow vs the same SQL bare in DuckDB, and a backfill.

- flow: `sessionflow run daily --date D --force`, as a user runs it (process start,
  temporary Prefect server, compaction, planning, models, commit, marts, manifest,
  quality checks);
- unchanged: `sessionflow run daily --date D` on a warehouse where D is up to date (the
  same process and server start, compaction and planning; nothing is built);
- bare: the same SQL model files run by DuckDB on the same lake, nothing else;
- backfill: `sessionflow backfill` over 30 days of about the same total volume.
The overhead ratio is flow / bare, measured in the same run.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

from bench.common import REPEATS
from pipeline.config import Settings, load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.build import (
    lake_reads,
    model_parameters,
    prepare_connection,
    run_day_models,
)
from pipeline.warehouse.costs import load_costs

DAY_EVENTS = 1_000_000
BACKFILL_DAYS = 30
START = date(2026, 10, 1)


def run(_bootstrap: str) -> str:
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        root = Path(directory)
        one_day = _prepared(
            root / "day", GeneratorConfig(days=1, start=START, events_per_day=DAY_EVENTS)
        )
        events = _lake_events(one_day)
        day = START.isoformat()
        flow_s = statistics.median(
            _timed_cli(one_day, "run", "daily", "--date", day, "--force") for _ in range(REPEATS)
        )
        unchanged_s = statistics.median(
            _timed_cli(one_day, "run", "daily", "--date", day) for _ in range(REPEATS)
        )
        bare_s = statistics.median(_bare_sql(one_day, START) for _ in range(REPEATS))

        month = _prepared(
            root / "month",
            GeneratorConfig(
                days=BACKFILL_DAYS, start=START, events_per_day=DAY_EVENTS // BACKFILL_DAYS
            ),
        )
        end = START + timedelta(days=BACKFILL_DAYS - 1)
        backfill_s = _timed_cli(
            month, "backfill", "--start", START.isoformat(), "--end", end.isoformat()
        )
    return "\n".join(
        [
            f"## Warehouse ({events:,} lake events in one day; {BACKFILL_DAYS}-day backfill)",
            "",
            "| measure | median | unit |",
            "|---|---:|---|",
            f"| daily aggregation, Prefect flow (`run daily --force`) | {flow_s:.1f} | s |",
            f"| `sessionflow run daily` on an unchanged warehouse | {unchanged_s:.1f} | s |",
            f"| the same SQL models, bare in DuckDB | {bare_s:.1f} | s |",
            f"| {BACKFILL_DAYS}-day backfill (`sessionflow backfill`, 2 in parallel), one run "
            f"| {backfill_s:.1f} | s |",
            "",
            f"**flow / bare SQL: {flow_s / bare_s:.2f}**; "
            f"**unchanged run / full build: {unchanged_s / flow_s:.2f}**",
            "",
        ]
    )


def _prepared(data_dir: Path, config: GeneratorConfig) -> Settings:
    settings = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(data_dir)})
    files = write_dataset(config, data_dir / "generated")
    import_file(settings, files.events_path, lambda _: None)
    load_costs(settings, files.costs_path)
    return settings


def _lake_events(settings: Settings) -> int:
    pattern = str(settings.lake_dir / "events" / "*" / "*.parquet")
    row = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [pattern]).fetchone()
    return int(row[0]) if row else 0


def _timed_cli(settings: Settings, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONFLOW_", "KAFKA_"))}
    env.update(
        SESSIONFLOW_DATA_DIR=str(settings.data_dir), PREFECT_HOME=str(settings.data_dir / "prefect")
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def _bare_sql(settings: Settings, day: date) -> float:
    # A copy of the warehouse, so the models see the same marketing_costs as the flow.
    copy = settings.data_dir / "bare.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    started = time.perf_counter()
    with duckdb.connect(str(copy)) as con:
        prepare_connection(con, settings)
        params = model_parameters(
            settings, day, lake_reads(settings, day), settings.data_dir / "scratch"
        )
        run_day_models(con, params)
    return time.perf_counter() - started
