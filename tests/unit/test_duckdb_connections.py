"""[warehouse] memory_limit, threads and temp_directory reach every DuckDB connection the
product opens (pipeline/duckdb_connections.py): a build spills under its data dir, owner
only; a build that needs more than the limit fails in one line naming the setting; what a
killed process spilled is removed; nothing in pipeline/ or flows/ connects otherwise."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings, WarehouseSettings, load_settings
from pipeline.duckdb_connections import connect
from pipeline.errors import ConfigError, SessionflowError
from pipeline.warehouse.build import build_day, open_warehouse
from tests.unit.warehouse.test_warehouse_models import T0, event, import_events, make_settings

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "pipeline" / "duckdb_connections.py"
# duckdb's module functions that only parse SQL text: no database, no data, no memory to bound.
PARSE_ONLY = {"tokenize", "extract_statements"}
DAY = date(2026, 11, 1)


def limited(data_dir: Path, **warehouse: object) -> Settings:
    return make_settings(data_dir, warehouse=WarehouseSettings.model_validate(warehouse))


def test_no_connection_in_pipeline_or_flows_bypasses_the_helper() -> None:
    """duckdb.connect(...) or any of duckdb's module functions that run SQL on its default
    connection (duckdb.execute, duckdb.sql, duckdb.read_parquet, ...) would take DuckDB's
    defaults: 80 % of the machine's memory, spilling to the working directory."""
    bypasses = []
    for path in sorted([*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]):
        if path == HELPER:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "duckdb"
                and node.func.attr[:1].islower()  # classes and exceptions are capitalised
                and node.func.attr not in PARSE_ONLY
            ):
                bypasses.append(f"{path.relative_to(ROOT)}:{node.lineno} duckdb.{node.func.attr}")
            if isinstance(node, ast.ImportFrom) and node.module == "duckdb":
                names = [alias.name for alias in node.names if alias.name[:1].islower()]
                bypasses += [f"{path.relative_to(ROOT)}:{node.lineno} from duckdb import {n}"
                             for n in names if n not in PARSE_ONLY]  # fmt: skip
    assert bypasses == []


@pytest.mark.parametrize("value", ["4GB", "512 MiB", "1.5gb", "50%", "12.5 %"])
def test_sizes_and_shares_duckdb_understands_are_accepted(value: str) -> None:
    settings = load_settings(environ={"SESSIONFLOW_WAREHOUSE__MEMORY_LIMIT": value})
    assert settings.warehouse.memory_limit == value


def test_the_warehouse_connection_takes_the_settings(tmp_path: Path) -> None:
    settings = limited(tmp_path / "data", memory_limit="300MB", threads=1)
    with open_warehouse(settings) as con:
        row = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')"
        ).fetchone()
    # DuckDB shows 300 MB (10^6 bytes) in MiB: 300e6 / 2^20 = 286.1.
    spill = tmp_path / "data" / "tmp" / f"duckdb-{os.getpid()}" / "warehouse.duckdb"
    assert row == ("286.1 MiB", 1, str(spill))


def test_the_default_is_half_the_machines_memory(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    assert settings.warehouse.memory_limit == "50%"
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    half = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:")) * 512
    with connect(settings) as con:
        (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    number, unit = limit.split()  # DuckDB shows it rounded: "11.7 GiB"
    shown = float(number) * {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    cgroup = Path("/sys/fs/cgroup/memory.max")
    if not cgroup.exists() or cgroup.read_text().strip() == "max":
        assert abs(shown - half) <= half * 0.01
    else:  # a container's limit below the machine's memory makes it less
        assert 0 < shown <= half * 1.01


def test_a_connection_spills_under_the_data_dir_owner_only_and_cleans_up(tmp_path: Path) -> None:
    settings = limited(tmp_path / "data", memory_limit="30MB", threads=1)
    process_dir = tmp_path / "data" / "tmp" / f"duckdb-{os.getpid()}"
    con = connect(settings)
    try:
        # About 80 MB of rows under a 30 MB limit: they can only be kept by spilling.
        con.execute("CREATE TEMP TABLE t AS SELECT md5(range::VARCHAR) AS s FROM range(1500000)")
        (count,) = con.execute("SELECT count(DISTINCT s) FROM t").fetchone() or (0,)
        assert count == 1_500_000
        (spill,) = process_dir.iterdir()
        assert any(spill.iterdir())
        assert stat.S_IMODE(process_dir.stat().st_mode) == 0o700
    finally:
        con.close()
    assert list(process_dir.iterdir()) == []  # DuckDB removes its spill files on close


def test_what_a_killed_process_spilled_is_removed(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    temp = tmp_path / "data" / "tmp"
    dead = temp / f"duckdb-{gone.stdout.strip()}" / "warehouse.duckdb"
    alive = temp / f"duckdb-{os.getppid()}" / "memory-0"
    other = temp / "12345"  # not of this naming: temp_directory may be a shared directory
    for directory in (dead, alive, other):
        directory.mkdir(parents=True)
        (directory / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x" * 1024)
    with connect(limited(tmp_path / "data")) as con:
        con.execute("SELECT 1")
    assert not dead.parent.exists()
    assert (alive / "duckdb_temp_storage_DEFAULT-0.tmp").exists()
    assert (other / "duckdb_temp_storage_DEFAULT-0.tmp").exists()


def test_a_temp_directory_that_cannot_be_created_names_the_key(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    settings = limited(tmp_path / "data", temp_directory=blocker / "tmp")
    with pytest.raises(ConfigError) as caught:
        connect(settings)
    message = str(caught.value)
    assert message.startswith(f"[warehouse] temp_directory {blocker / 'tmp'} cannot be created")
    assert "\n" not in message


def test_a_build_over_its_memory_limit_fails_in_one_line_naming_the_setting(
    tmp_path: Path,
) -> None:
    settings = limited(tmp_path / "data", memory_limit="1MB", threads=1)
    import_events(settings, [
        event(f"e{n}", "page_view", T0 + timedelta(minutes=n), f"v{n % 7}") for n in range(50)
    ], tmp_path / "events.jsonl")  # fmt: skip
    with pytest.raises(SessionflowError) as caught:
        build_day(settings, DAY)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"building {DAY} needs more memory than [warehouse] memory_limit (1MB) allows"
    )
    # With the default limit the same day builds: the limit, not the data, stopped it.
    assert build_day(limited(tmp_path / "data"), DAY).rows["sessions"] == 7
