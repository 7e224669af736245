"""The key tests of every build (pipeline/warehouse/model_keys.py): a model whose rows
break its declared `unique` or `not_null` fails the build in one line, and the day is not
stored."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.errors import SessionflowError
from pipeline.warehouse import models
from pipeline.warehouse.build import build_day
from pipeline.warehouse.model_keys import check_keys
from pipeline.warehouse.models import Model
from tests.unit.warehouse.test_warehouse_models import (
    DAY,
    T0,
    event,
    import_events,
    make_settings,
    warehouse_rows,
)

DAILY = Model("marts/daily_x", "one row per date x site_id", (), ("date", "site_id"), ("site_id",))


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


def daily_x(con: duckdb.DuckDBPyConnection, rows: Sequence[tuple[str, str | None]]) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE daily_x (date VARCHAR, site_id VARCHAR, n INTEGER)")
    con.executemany("INSERT INTO daily_x VALUES (?, ?, 1)", [list(row) for row in rows])


def test_rows_that_share_a_key_fail_naming_the_model_the_key_and_the_rows(
    con: duckdb.DuckDBPyConnection,
) -> None:
    # (d1, a) three times, (d2, a) twice, (d1, b) once: 5 rows share a key.
    daily_x(con, [("d1", "a")] * 3 + [("d2", "a")] * 2 + [("d1", "b")])
    with pytest.raises(SessionflowError) as failure:
        check_keys(con, DAILY)
    assert str(failure.value) == (
        "model daily_x: 5 rows share a key (date, site_id) declared unique"
    )


def test_null_key_columns_fail_before_duplicates(con: duckdb.DuckDBPyConnection) -> None:
    daily_x(con, [("d1", None), ("d2", None), ("d1", "a"), ("d1", "a")])
    with pytest.raises(SessionflowError) as failure:
        check_keys(con, DAILY)
    assert str(failure.value) == "model daily_x: 2 rows have no site_id (declared not_null)"


def test_a_clean_table_passes_and_an_unknown_column_is_named(
    con: duckdb.DuckDBPyConnection,
) -> None:
    daily_x(con, [("d1", "a"), ("d2", "a"), ("d1", "b")])
    check_keys(con, DAILY)
    check_keys(con, Model("marts/daily_x", "no key", ("goals",)))
    with pytest.raises(SessionflowError) as failure:
        check_keys(con, Model("marts/daily_x", "g", (), ("date", "day"), ()))
    assert str(failure.value) == (
        "model daily_x: its declared key names day, which its table does not have"
    )


@pytest.fixture
def sql_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The models run from a copy of sql/ that a test may break."""
    copy = tmp_path / "sql"
    shutil.copytree(models.SQL_DIR, copy)
    monkeypatch.setattr(models, "SQL_DIR", copy)
    models.read_sql.cache_clear()
    yield copy
    models.read_sql.cache_clear()


def test_a_build_whose_model_breaks_its_key_stores_nothing(tmp_path: Path, sql_copy: Path) -> None:
    summary = sql_copy / "marts" / "daily_site_summary_this_run.sql"
    text = summary.read_text()
    assert text.count("FROM rated\n") == 1
    # Every row twice: one site with sessions, so 2 rows share (date, site_id).
    summary.write_text(text.replace("FROM rated\n", "FROM rated, range(2)\n"))
    settings = make_settings(tmp_path / "data")
    import_events(
        settings,
        [event(f"e{i}", "page_view", T0 + timedelta(minutes=i), f"v{i}") for i in range(3)],
        tmp_path / "events.jsonl",
    )

    with pytest.raises(SessionflowError) as failure:
        build_day(settings, DAY)

    assert str(failure.value) == (
        "model daily_site_summary_this_run: 2 rows share a key (date, site_id) declared unique"
    )
    for table in ("sessions", "daily_site_summary", "session_users", "build_manifest"):
        assert warehouse_rows(settings, table) == [], table
    assert not list(settings.marts_dir.rglob("*.parquet"))
