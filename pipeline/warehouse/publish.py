"""What a build writes: the output tables (the one list of them), their rows in the
warehouse, and their Parquet marts.

Table and column names come only from `OUTPUTS` and `WAREHOUSE_ONLY` below; a statement
that needs one as an identifier (DuckDB takes no parameter there) gets it through
`_identifiers`, which refuses any other name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

import duckdb

from pipeline.lake.files import Writer, write_all_atomically
from pipeline.lake.store import PARQUET_OPTIONS, write_parquet_batches


@dataclass(frozen=True)
class Output:
    """A warehouse table a build writes; `stage` is the TEMP table holding the run's rows;
    a build replaces one `period` ("date", "week" or "month") of it, found in column `key`."""

    table: str
    stage: str
    period: str
    key: str

    def period_value(self, day: date) -> date | str:
        if self.period == "date":
            return day
        return day.strftime(_PERIOD_FORMATS[self.period])

    def mart_path(self, marts_dir: Path, day: date) -> Path:
        value = self.period_value(day)
        text = value.isoformat() if isinstance(value, date) else value
        return marts_dir / self.table / f"{self.period}={text}" / "data.parquet"


# As the models spell them (strftime): ISO weeks 'YYYY-Www', months 'YYYY-MM'.
_PERIOD_FORMATS = {"week": "%G-W%V", "month": "%Y-%m"}


# The output tables BI tools read, each published as marts/<table>/<period>=<value>/.
OUTPUTS = (
    Output("sessions", "sessions_this_run", "date", "session_date"),
    Output("daily_sessions", "daily_sessions_this_run", "date", "date"),
    Output("daily_cost_per_session", "daily_cost_per_session_this_run", "date", "date"),
    Output("daily_site_summary", "daily_site_summary_this_run", "date", "date"),
    Output("weekly_sessions_per_user", "weekly_sessions_per_user_this_run", "week", "week"),
    Output("monthly_sessions_per_user", "monthly_sessions_per_user_this_run", "month", "month"),
)
# Tables the build keeps in the warehouse for later builds, without a mart.
WAREHOUSE_ONLY = (
    Output("session_users", "session_users_this_run", "date", "session_date"),
    Output("day_attribution_users", "stg_day_users", "date", "date"),
)
DAY_OUTPUTS = tuple(o for o in (*OUTPUTS, *WAREHOUSE_ONLY) if o.period == "date")
# Week- and month-to-date rows, recomputed from the warehouse after each day is stored.
PERIOD_OUTPUTS = tuple(o for o in OUTPUTS if o.period != "date")


def replace_period(con: duckdb.DuckDBPyConnection, output: Output, day: date) -> None:
    """Replace the rows of `day`'s period in `output.table` with the stage's. Call inside
    the build's transaction: a reader sees the old period or the new one, never a mix."""
    table, stage, key = _identifiers(output)
    con.execute(f"DELETE FROM {table} WHERE {key} = ?", [output.period_value(day)])
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {stage}")


def publish_marts(
    con: duckdb.DuckDBPyConnection, marts_dir: Path, day: date
) -> tuple[dict[str, int], list[Path]]:
    """Write `day`'s file of each mart; returns rows per table and the files written.
    Each file is written from DuckDB a batch at a time: a 10M-event day's sessions never
    sit in memory whole."""
    rows: dict[str, int] = {}
    marts: list[Path] = []
    staged: list[tuple[Path, Writer]] = []
    for output in OUTPUTS:
        # The partition column lives in the path only: pandas, pyarrow's datasets and
        # polars refuse a column that is both in the file and in the path.
        dropped = f" EXCLUDE ({_quoted(output.key)})" if output.key == output.period else ""
        if output.period != "date":
            # From the warehouse, not this run: it includes every day committed so far.
            table, _, key = _identifiers(output)
            query = f"SELECT *{dropped} FROM {table} WHERE {key} = $period ORDER BY ALL"
            params = {"period": output.period_value(day)}
        else:
            query, params = f"SELECT *{dropped} FROM {_quoted(output.stage)}", {}
        # A day with no rows still gets its (empty) file, replacing any stale one.
        path = output.mart_path(marts_dir, day)
        staged.append((path, partial(_write_mart, con, query, params, rows, output.table)))
        marts.append(path)
    # Every file written whole before any is renamed into place: a full or read-only disk
    # leaves all of the day's old marts, never some old and some new.
    write_all_atomically(staged)
    return rows, marts


def _write_mart(
    con: duckdb.DuckDBPyConnection,
    query: str,
    params: Mapping[str, object],
    rows: dict[str, int],
    table: str,
    staging: Path,
) -> None:
    """`query`'s rows into the Parquet file `staging`, a batch at a time; their count
    into rows[table]."""
    reader = con.execute(query, dict(params)).to_arrow_reader(PARQUET_OPTIONS["row_group_size"])
    rows[table] = write_parquet_batches(staging, reader.schema, reader)


def _identifiers(output: Output) -> tuple[str, str, str]:
    if output not in (*OUTPUTS, *WAREHOUSE_ONLY):
        raise ValueError(f"{output.table!r} is not an output table")
    return _quoted(output.table), _quoted(output.stage), _quoted(output.key)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
