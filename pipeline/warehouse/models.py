"""The SQL models: the DAG of `.sql` files under sql/, and how a statement is run.

    sql/staging/   stg_site_currencies,           each site's currency factors; the lake's
                   stg_lake_events, stg_events,   and the costs' rows, cleaned
                   stg_transactions, stg_touches,
                   stg_costs
    sql/sessions/  sessions, session_users        one row per session
    sql/marts/     session_totals, the daily tables, weekly and monthly sessions per user
    sql/publish/   the warehouse's tables, cost loading
    sql/checks/    quality checks, build statistics

Each model states its grain at its top. SQL is only ever read from these files and run
with named parameters ($run_date, $timezone, $currency, $lake_files, ...): no statement
is assembled from values in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

SQL_DIR = Path(__file__).parent / "sql"

# Connection settings and the warehouse's tables, created when missing.
SETUP_MODELS = (
    "publish/connection",
    "macros/lake_events",
    "macros/site_amount",
    "publish/lake_summaries",
    "publish/marketing_costs",
    "publish/warehouse_tables",
    "publish/build_manifest",
)
# One day's models, each a TEMP table built from the ones before it (dbt-snowplow-web
# style: events -> sessions -> daily tables).
DAY_MODELS = (
    "staging/stg_site_currencies",
    "staging/stg_day_sessions",
    "staging/stg_lake_events",
    "staging/stg_events",
    "staging/stg_transactions",
    "staging/stg_refunds",
    "staging/stg_day_users",
    "staging/stg_touches",
    "sessions/sessions",
    "sessions/session_users",
    "staging/stg_costs",
    "marts/session_totals",
    "marts/daily_sessions",
    "marts/daily_cost_per_session",
    "marts/daily_site_summary",
)
# Read the warehouse's sessions of the whole week or month, so they run after the day is
# stored.
PERIOD_MODELS = ("marts/weekly_sessions_per_user", "marts/monthly_sessions_per_user")


def run_sql_model(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> None:
    """Run every statement of sql/<name>.sql, each given the parameters it names."""
    for statement in con.extract_statements(read_sql(name)):
        con.execute(statement, _parameters_for(statement, params or {}, name))


def query_sql_model(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> pa.Table:
    """The result of sql/<name>.sql, a single query, as Arrow."""
    (statement,) = con.extract_statements(read_sql(name))
    return con.execute(statement, _parameters_for(statement, params or {}, name)).to_arrow_table()


@cache
def read_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _parameters_for(
    statement: duckdb.Statement, params: Mapping[str, Any], name: str
) -> dict[str, Any]:
    # DuckDB refuses parameters a statement doesn't name, so each gets just its own.
    missing = statement.named_parameters - params.keys()
    if missing:
        raise ValueError(f"sql/{name}.sql needs parameters {sorted(missing)}")
    return {key: params[key] for key in statement.named_parameters}
