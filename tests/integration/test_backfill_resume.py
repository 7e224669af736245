"""A backfill killed midway, then run again, ends identical to an uninterrupted one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from pipeline.config import load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.query import mart_globs, run_query
from tests.conftest import clean_env, run_cli

DAYS = ("--start", "2026-11-01", "--end", "2026-11-06")


def tables(marts: Path) -> dict[str, list[tuple[object, ...]]]:
    return {
        name: run_query(marts, f'SELECT * FROM "{name}" ORDER BY ALL').rows
        for name in mart_globs(marts)
    }


def test_killed_backfill_resumes_to_the_same_result(tmp_path: Path) -> None:
    killed_env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "killed"), PREFECT_HOME=str(tmp_path / "p1")
    )
    whole_env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "whole"), PREFECT_HOME=str(tmp_path / "p2")
    )
    settings = load_settings(environ=killed_env)
    generated = write_dataset(
        GeneratorConfig(days=6, start=date(2026, 11, 1), events_per_day=3000), tmp_path / "gen"
    )
    import_file(settings, generated.events_path, lambda _: None)
    shutil.copytree(tmp_path / "killed", tmp_path / "whole")

    backfill = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "backfill", *DAYS, "--parallel", "2"],
        env=killed_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its Prefect temporary server dies with it
    )  # fmt: skip
    summaries = settings.marts_dir / "daily_site_summary"
    deadline = time.monotonic() + 300
    while not list(summaries.glob("date=*/data.parquet")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(backfill.pid, signal.SIGKILL)
    backfill.wait()
    built_before_kill = len(list(summaries.glob("date=*/data.parquet")))
    assert 1 <= built_before_kill < 6, "the kill should land midway"

    resumed = run_cli(killed_env, "backfill", *DAYS)
    assert resumed.returncode in (0, 4), resumed.stderr
    assert resumed.stdout.count("already built") >= 1
    whole = run_cli(whole_env, "backfill", *DAYS)
    assert whole.returncode in (0, 4), whole.stderr

    assert tables(settings.marts_dir) == tables(tmp_path / "whole" / "marts")
