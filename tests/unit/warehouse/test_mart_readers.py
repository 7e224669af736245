"""Every mart opens in the readers BI users have, with the warehouse's values: pandas,
pyarrow's datasets, polars, DuckDB and the DuckDB CLI; and through SQLAlchemy with
duckdb-engine, as docs/tables.md tells a BI tool to connect, with `sessionflow query`'s rows. The partition column lives in the
path only; some readers return it as a date, others as text, so values are compared in
one canonical form."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas
import polars
import pyarrow.dataset
import pytest
import sqlalchemy

from pipeline.config import Settings
from pipeline.dev.generator import GeneratorConfig, generate_costs, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.build import build_day
from pipeline.warehouse.publish import OUTPUTS
from tests.conftest import clean_env, run_cli
from tests.unit.warehouse.test_warehouse_models import SITES, load_costs, make_settings

DAY = date(2026, 11, 1)
Row = dict[str, Any]
TABLES = [output.table for output in OUTPUTS]
# The DuckDB CLI installed beside the library (duckdb-cli, at the library's version).
DUCKDB_CLI = Path(sys.executable).parent / "duckdb"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("readers")
    settings = make_settings(root / "data", goals={"sign_up": 5.0})
    config = GeneratorConfig(days=2, start=DAY, seed=3, events_per_day=500, sites=SITES)
    files = write_dataset(config, root / "gen")
    import_file(settings, files.events_path, lambda _: None)
    load_costs(settings, [{**r, "date": date.fromisoformat(r["date"])}
                          for r in generate_costs(config)])  # fmt: skip
    for day in (DAY, DAY + timedelta(days=1)):
        build_day(settings, day)
    return settings


def canonical(value: Any) -> Any:
    """One form for what readers return differently: numbers as rounded floats, dates
    and times as ISO text in UTC, categories and text as text, NaN as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), 6)
    if isinstance(value, datetime):
        return value.isoformat() if value.tzinfo is None else pandas.Timestamp(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, pandas.Timestamp):
        return value.isoformat()
    return str(value)


def canonical_rows(rows: Iterable[Row]) -> list[tuple[tuple[str, Any], ...]]:
    return sorted(
        (tuple(sorted((k, canonical(v)) for k, v in row.items())) for row in rows), key=repr
    )


def warehouse(settings: Settings, table: str) -> list[Row]:
    """The warehouse table's rows, with the sessions mart's partition column (date=) too."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        relation = con.execute(f'SELECT * FROM "{table}"')
        columns = [c[0] for c in relation.description or []]
        rows = [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]
    if table == "sessions":
        rows = [{**row, "date": row["session_date"]} for row in rows]
    return rows


def mart_dir(settings: Settings, table: str) -> Path:
    return settings.marts_dir / table


def with_pandas(settings: Settings, table: str) -> list[Row]:
    frame = pandas.read_parquet(mart_dir(settings, table))
    rows: list[Row] = frame.astype(object).to_dict("records")
    return rows


def with_pyarrow(settings: Settings, table: str) -> list[Row]:
    dataset = pyarrow.dataset.dataset(mart_dir(settings, table), partitioning="hive")
    rows: list[Row] = dataset.to_table().to_pylist()
    return rows


def with_polars(settings: Settings, table: str) -> list[Row]:
    frame = polars.read_parquet(mart_dir(settings, table), hive_partitioning=True)
    return frame.to_dicts()


def with_duckdb(settings: Settings, table: str) -> list[Row]:
    pattern = str(mart_dir(settings, table) / "*" / "*.parquet")
    relation = duckdb.execute("SELECT * FROM read_parquet(?, hive_partitioning = true)", [pattern])
    columns = [c[0] for c in relation.description or []]
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


READERS: dict[str, Callable[[Settings, str], list[Row]]] = {
    "pandas.read_parquet": with_pandas,
    "pyarrow.dataset": with_pyarrow,
    "polars.read_parquet": with_polars,
    "duckdb.read_parquet": with_duckdb,
}


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_each_reader_reads_each_mart_as_the_warehouse_holds_it(
    built: Settings, reader: str, table: str
) -> None:
    expected = canonical_rows(warehouse(built, table))
    assert expected, f"{table} is empty: the test would prove nothing"
    assert canonical_rows(READERS[reader](built, table)) == expected


@pytest.mark.parametrize("table", TABLES)
def test_the_duckdb_cli_reads_each_mart(built: Settings, table: str) -> None:
    """The CLI a user runs: counts, partition values and every numeric column's total."""
    pattern = str(mart_dir(built, table) / "*" / "*.parquet")
    expected = warehouse(built, table)
    numeric = [k for k, v in expected[0].items()
               if isinstance(v, int | float | Decimal) and not isinstance(v, bool)]  # fmt: skip
    partition = {"sessions": "date"}.get(table, next(
        o.key for o in OUTPUTS if o.table == table
    ))  # fmt: skip
    totals = ", ".join(f'sum("{k}")::DOUBLE AS "{k}"' for k in numeric)
    sql = (
        f'SELECT count(*) AS n, list(DISTINCT "{partition}"::VARCHAR) AS parts, '
        f"{totals} FROM read_parquet('{pattern}', hive_partitioning = true)"
    )
    result = subprocess.run(
        [str(DUCKDB_CLI), "-json", "-c", sql], capture_output=True, text=True, check=True,
        timeout=60,
    )  # fmt: skip
    (got,) = json.loads(result.stdout)
    assert got["n"] == len(expected)
    assert sorted(got["parts"]) == sorted({canonical(row[partition]) for row in expected})
    for column in numeric:
        want = sum(float(row[column]) for row in expected if row[column] is not None)
        assert got[column] == pytest.approx(want, rel=1e-9, abs=1e-9), column


def test_the_cli_is_the_librarys_version() -> None:
    result = subprocess.run(
        [str(DUCKDB_CLI), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split()[0] == f"v{duckdb.__version__}"


# -- SQLAlchemy and duckdb-engine: how Superset and other SQLAlchemy-based BI tools connect --

TABLES_DOC = Path(__file__).resolve().parents[3] / "docs" / "tables.md"
DOC_DATA_DIR = "/srv/sessionflow/data"  # the data directory the documented views name
DOC_VIEWS = re.compile(r"```sql\n(\s*-- duckdb \S+/bi\.duckdb < bi-views\.sql\n.*?)```", re.S)


@pytest.fixture(scope="module")
def bi_file(built: Settings) -> Path:
    """docs/tables.md's file of views over the marts, made as it says: its statements,
    pointed at this build's data directory, run by the DuckDB CLI."""
    (statements,) = DOC_VIEWS.findall(TABLES_DOC.read_text("utf-8"))
    path = built.data_dir / "bi.duckdb"
    subprocess.run(
        [str(DUCKDB_CLI), str(path)], input=statements.replace(DOC_DATA_DIR, str(built.data_dir)),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def bi_engine(bi_file: Path) -> Iterator[sqlalchemy.Engine]:
    """The URL a BI tool is given: the file, read-only."""
    engine = sqlalchemy.create_engine(f"duckdb:///{bi_file}?access_mode=read_only")
    yield engine
    engine.dispose()


def test_sqlalchemy_lists_the_marts_and_their_columns(
    built: Settings, bi_engine: sqlalchemy.Engine
) -> None:
    """What a dataset picker shows: the six marts (as views) and, from a query's result,
    each one's columns."""
    assert sorted(sqlalchemy.inspect(bi_engine).get_view_names()) == sorted(TABLES)
    with bi_engine.connect() as connection:
        for table in TABLES:
            result = connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}" LIMIT 0'))
            assert sorted(result.keys()) == sorted(warehouse(built, table)[0]), table


@pytest.mark.xfail(
    strict=True,
    raises=sqlalchemy.exc.ProgrammingError,
    reason="duckdb-engine 0.17 with SQLAlchemy >= 2.0.45: column reflection queries "
    "pg_catalog.pg_collation.collnamespace, which DuckDB lacks (duckdb_engine issue #1379). "
    "When this passes, docs/tables.md's note on it goes.",
)
def test_sqlalchemy_reflects_the_marts_columns(
    built: Settings, bi_engine: sqlalchemy.Engine
) -> None:
    inspector = sqlalchemy.inspect(bi_engine)
    for table in TABLES:
        columns = [column["name"] for column in inspector.get_columns(table)]
        assert sorted(columns) == sorted(warehouse(built, table)[0]), table


@pytest.mark.parametrize("table", TABLES)
def test_sqlalchemy_reads_each_mart_as_sessionflow_query_does(
    built: Settings, bi_engine: sqlalchemy.Engine, table: str
) -> None:
    with bi_engine.connect() as connection:
        got = [dict(row) for row in connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))
               .mappings()]  # fmt: skip
    env = clean_env(SESSIONFLOW_DATA_DIR=str(built.data_dir))
    result = run_cli(env, "query", "--format", "json", f'SELECT * FROM "{table}"')
    assert result.returncode == 0, result.stderr
    queried = json.loads(result.stdout)
    assert queried, f"{table} is empty: the test would prove nothing"
    assert canonical_rows(got) == canonical_rows(queried)


def test_a_read_only_engine_cannot_write(bi_file: Path, tmp_path: Path) -> None:
    """The Python form of the connection (connect_args), read-only: it reads the views, and
    a write is refused. (On a copy: DuckDB allows one configuration per file and process.)"""
    copy = tmp_path / bi_file.name
    shutil.copyfile(bi_file, copy)
    engine = sqlalchemy.create_engine(f"duckdb:///{copy}", connect_args={"read_only": True})
    try:
        with engine.connect() as connection:
            summary = connection.execute(sqlalchemy.text("SELECT count(*) FROM daily_site_summary"))
            assert summary.scalar_one() > 0
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
                connection.execute(sqlalchemy.text("CREATE TABLE scribble (n INTEGER)"))
    finally:
        engine.dispose()
