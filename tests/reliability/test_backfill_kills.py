"""A backfill SIGKILLed at chosen points of its builds (the fault hook, pipeline.faults,
not a timer), then run again: the re-run builds exactly the days not recorded as built
and ends with marts identical to an uninterrupted backfill's.

Every flow command runs on the test session's one Prefect server (tests/conftest.py
`_SharedPrefect`), the killed one included: a temporary server per killed run costs
~12 s, and on a slow machine its start-up is a failure that has nothing to do with the
kill. The lake and the uninterrupted run are made once for the module.
"""

from __future__ import annotations

import shutil
import signal
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from tests.conftest import _SharedPrefect, clean_env, run_cli
from tests.stress.common import backfill_killed_at, mart_tables, recorded_days

DAYS = [f"2026-11-0{n}" for n in range(1, 7)]
RANGE = ("--start", DAYS[0], "--end", DAYS[-1])


@dataclass(frozen=True)
class Prepared:
    lake: Path  # a data dir whose lake holds the six days, nothing built
    whole: dict[str, list[tuple[object, ...]]]  # the marts of an uninterrupted backfill
    api_url: str  # the session's Prefect server


def data_env(data_dir: Path, api_url: str) -> dict[str, str]:
    return clean_env(SESSIONFLOW_DATA_DIR=str(data_dir), PREFECT_API_URL=api_url)


@pytest.fixture(scope="module")
def prepared(
    tmp_path_factory: pytest.TempPathFactory, shared_prefect_server: _SharedPrefect
) -> Prepared:
    root = tmp_path_factory.mktemp("backfill")
    api_url = shared_prefect_server.api_url()
    lake = root / "lake"
    generated = write_dataset(
        GeneratorConfig(days=6, start=date(2026, 11, 1), events_per_day=1500), root / "gen"
    )
    import_file(
        load_settings(environ=data_env(lake, api_url)), generated.events_path, lambda _: None
    )
    shutil.copytree(lake, root / "whole")
    whole = run_cli(data_env(root / "whole", api_url), "backfill", *RANGE)
    assert whole.returncode in (0, 4), whole.stdout + whole.stderr
    return Prepared(lake, mart_tables(root / "whole" / "marts"), api_url)


# (fault, --parallel, days recorded as built when it lands). Each day commits, publishes
# its marts and records itself under one lock, so however many build in parallel, the
# n-th pass of a point comes after exactly n - 1 whole days (n with after_manifest).
KILLS = [
    ("after_commit:1", 2, 0),  # the first commit: nothing recorded yet
    ("after_marts:2", 2, 1),
    ("after_manifest:4", 2, 4),
    ("after_manifest:6", 1, 6),  # a serial run; every day recorded, the flow not finished
]


@pytest.mark.parametrize(("fault", "parallel", "recorded"), KILLS)
def test_killed_backfill_resumes_to_the_same_result(
    prepared: Prepared, tmp_path: Path, fault: str, parallel: int, recorded: int
) -> None:
    data_dir = tmp_path / "killed"
    shutil.copytree(prepared.lake, data_dir)
    env = data_env(data_dir, prepared.api_url)

    log = tmp_path / "killed.log"
    status = backfill_killed_at(env, fault, *RANGE, "--parallel", str(parallel), log=log)
    assert status == -signal.SIGKILL, f"ended ({status}) before {fault}:\n{log.read_text()}"
    up_to_date = recorded_days(data_dir)
    assert len(up_to_date) == recorded, sorted(up_to_date)

    resumed = run_cli(env, "backfill", *RANGE)
    assert resumed.returncode in (0, 4), resumed.stdout + resumed.stderr
    for day in DAYS:
        expected = "up to date" if day in up_to_date else "not built yet: built"
        assert f"{day}: {expected}" in resumed.stdout, (day, resumed.stdout)
    assert mart_tables(data_dir / "marts") == prepared.whole
    print(
        f"backfill killed at {fault} (--parallel {parallel}): {len(up_to_date)} days recorded, "
        f"{len(DAYS) - len(up_to_date)} rebuilt, marts identical to an uninterrupted run"
    )
