"""What a build writes: the output tables (the one list of them), their rows in the
warehouse, and their Parquet marts.

Table and column names come only from `OUTPUTS` and `WAREHOUSE_ONLY` below; a statement
that needs one as an identifier (DuckDB takes no parameter there) gets it through
`_identifiers`, which refuses any other name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from pipeline.lake.store import write_parquet_atomically


@dataclass(frozen=True)
class Output:
    """A warehouse table a build writes; `stage` is the TEMP table holding the run's rows;
    a build replaces one `period` ("date" or "month") of it, found in column `key`."""

    table: str
    stage: str
    period: str
    key: str

    def period_value(self, day: date) -> date | str:
        return day if self.period == "date" else day.strftime("%Y-%m")

    def mart_path(self, marts_dir: Path, day: date) -> Path:
        value = day.isoformat() if self.period == "date" else day.strftime("%Y-%m")
        return marts_dir / self.table / f"{self.period}={value}" / "data.parquet"


# The output tables BI tools read, each published as marts/<table>/<period>=<value>/.
OUTPUTS = (
    Output("sessions", "sessions_this_run", "date", "session_date"),
    Output("daily_sessions", "daily_sessions_this_run", "date", "date"),
    Output("daily_cost_per_session", "daily_cost_per_session_this_run", "date", "date"),
    Output("daily_site_summary", "daily_site_summary_this_run", "date", "date"),
    Output("monthly_sessions_per_user", "monthly_sessions_per_user_this_run", "month", "month"),
)
# Tables the build keeps in the warehouse for later builds, without a mart.
WAREHOUSE_ONLY = (Output("session_identity", "session_identity_this_run", "date", "session_date"),)
DAY_OUTPUTS = tuple(o for o in (*OUTPUTS, *WAREHOUSE_ONLY) if o.period == "date")
MONTH_OUTPUTS = tuple(o for o in OUTPUTS if o.period == "month")


def replace_period(con: duckdb.DuckDBPyConnection, output: Output, day: date) -> None:
    """Replace the rows of `day`'s period in `output.table` with the stage's. Call inside
    the build's transaction: a reader sees the old period or the new one, never a mix."""
    table, stage, key = _identifiers(output)
    con.execute(f"DELETE FROM {table} WHERE {key} = ?", [output.period_value(day)])
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {stage}")


def publish_marts(
    con: duckdb.DuckDBPyConnection, marts_dir: Path, day: date
) -> tuple[dict[str, int], list[Path]]:
    """Write `day`'s file of each mart; returns rows per table and the files written."""
    rows: dict[str, int] = {}
    marts: list[Path] = []
    for output in OUTPUTS:
        if output.period == "month":
            # From the warehouse, not this run: it includes every day committed so far.
            table, _, key = _identifiers(output)
            relation = con.execute(
                f"SELECT * FROM {table} WHERE {key} = ? ORDER BY ALL", [output.period_value(day)]
            )
            result = relation.to_arrow_table()
        else:
            result = con.table(output.stage).to_arrow_table()
        rows[output.table] = result.num_rows
        # Written whole, then renamed into place: a reader sees the old day or the new
        # one. A day with no rows still gets its (empty) file, replacing any stale one.
        path = output.mart_path(marts_dir, day)
        write_parquet_atomically(result, path)
        marts.append(path)
    return rows, marts


def _identifiers(output: Output) -> tuple[str, str, str]:
    if output not in (*OUTPUTS, *WAREHOUSE_ONLY):
        raise ValueError(f"{output.table!r} is not an output table")
    return _quoted(output.table), _quoted(output.stage), _quoted(output.key)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
