"""Shared set-up for the stress scripts: a generated lake, CLI runs in fresh data dirs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from pipeline.config import load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.query import mart_globs, run_query
from tests.conftest import clean_env


def prepared_lake(workdir: Path, days: int, events_per_day: int) -> Path:
    """A data dir holding `days` generated days (from 2026-11-01) in its lake, no builds."""
    source = workdir / "source"
    if not source.exists():
        settings = load_settings(environ=clean_env(SESSIONFLOW_DATA_DIR=str(source)))
        config = GeneratorConfig(days=days, start=date(2026, 11, 1), events_per_day=events_per_day)
        generated = write_dataset(config, workdir / "generated")
        import_file(settings, generated.events_path, lambda _: None)
    return source


def fresh_copy(source: Path, target: Path) -> dict[str, str]:
    """A copy of `source` at `target`, and the environment that points the CLI at it."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return clean_env(SESSIONFLOW_DATA_DIR=str(target), PREFECT_HOME=str(target / "prefect"))


def mart_tables(marts: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every published table's rows, sorted: what two runs must agree on."""
    return {
        name: run_query(marts, f'SELECT * FROM "{name}" ORDER BY ALL').rows
        for name in mart_globs(marts)
    }


def backfill_killed_at(env: dict[str, str], fault: str, *args: str, log: Path | None = None) -> int:
    """`backfill ARGS` that SIGKILLs itself at `fault` (pipeline.faults); returns its exit
    status once it is gone. It runs on the Prefect server that `env`'s PREFECT_API_URL
    names (the tests give it their session's shared one: tests.conftest._SharedPrefect),
    else on Prefect's temporary server, which is killed with it (its process group).
    Its output goes to `log` when given."""
    with open(log or os.devnull, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "backfill", *args],
            env={**env, "SESSIONFLOW_FAULT": fault}, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        status = process.wait(timeout=900)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return status


def recorded_days(data_dir: Path) -> set[str]:
    """The days the build manifest records as built."""
    warehouse = data_dir / "warehouse.duckdb"
    if not warehouse.exists():
        return set()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {str(row[0]) for row in con.execute("SELECT date FROM build_manifest").fetchall()}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
