"""A backfill killed at a chosen point (a test hook, not a timer), then run again, builds
exactly the days that are not up to date and ends identical to an uninterrupted run."""

from __future__ import annotations

import shutil
import signal
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from tests.conftest import clean_env, run_cli
from tests.stress.common import backfill_killed_at, mart_tables, recorded_days

DAYS = ("--start", "2026-11-01", "--end", "2026-11-06")


@pytest.mark.parametrize("fault", ["after_commit:3", "after_marts:2", "after_manifest:4"])
def test_killed_backfill_resumes_to_the_same_result(tmp_path: Path, fault: str) -> None:
    killed_env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "killed"), PREFECT_HOME=str(tmp_path / "p1")
    )
    whole_env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "whole"), PREFECT_HOME=str(tmp_path / "p2")
    )
    settings = load_settings(environ=killed_env)
    generated = write_dataset(
        GeneratorConfig(days=6, start=date(2026, 11, 1), events_per_day=1500), tmp_path / "gen"
    )
    import_file(settings, generated.events_path, lambda _: None)
    shutil.copytree(tmp_path / "killed", tmp_path / "whole")

    assert backfill_killed_at(killed_env, fault, *DAYS, "--parallel", "2") == -signal.SIGKILL
    up_to_date = recorded_days(settings.data_dir)
    assert 0 < len(up_to_date) < 6 or fault.startswith("after_commit")

    resumed = run_cli(killed_env, "backfill", *DAYS)
    assert resumed.returncode in (0, 4), resumed.stderr
    for day in (f"2026-11-0{n}" for n in range(1, 7)):
        expected = "up to date" if day in up_to_date else "not built yet: built"
        assert f"{day}: {expected}" in resumed.stdout, (day, resumed.stdout)
    whole = run_cli(whole_env, "backfill", *DAYS)
    assert whole.returncode in (0, 4), whole.stderr

    assert mart_tables(settings.marts_dir) == mart_tables(tmp_path / "whole" / "marts")
