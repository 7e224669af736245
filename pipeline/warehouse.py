"""The warehouse build (imperative shell): one day's SQL models, stored and published.

The models are the SQL files under pipeline/sql/, run by DuckDB in this order, each a
TEMP table built from the previous ones (dbt-snowplow-web style, events -> sessions ->
daily tables):

    stg_events                 the lake's events of the day's sessions, de-duplicated,
                               amounts in the reporting currency
    first_event_traffic        (a query) source / medium inputs of each first event;
                               this module answers it as the table traffic_sources
    sessions                   sessions_this_run: one row per session
    session_identity           whether each session had a stable id
    stg_costs                  the day's marketing costs in the reporting currency
    daily_sessions             | the daily tables, from sessions_this_run and stg_costs
    daily_cost_per_session     |
    daily_site_summary         |

then, in one transaction, persist_day (replace the date's rows), monthly_sessions_per_user
and persist_month. Finally each table's rows for the day go out as a Parquet mart.

Source / medium are computed here, in Python, with pipeline.channels.source_medium: the
same rules (and category lists) the lake's per-event channel_group came from, so the
session's source, medium and channel_group can't disagree. SQL asks for the distinct
first-event inputs and joins the answers back; nothing else leaves DuckDB.

SQL is only ever read from those files and run with named parameters ($run_date,
$timezone, $currency, $lake_files): no statement is assembled here.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.channels import source_medium
from pipeline.config import Settings
from pipeline.event_schema import lake_arrow_schema
from pipeline.lake import EVENTS, write_parquet_atomically

SQL_DIR = Path(__file__).parent / "sql"

# The day models after stg_events and the traffic sources, in dependency order.
DAY_MODELS = (
    "sessions",
    "session_identity",
    "stg_costs",
    "daily_sessions",
    "daily_cost_per_session",
    "daily_site_summary",
)
MONEY = pa.decimal128(18, 4)
_TRAFFIC_INPUTS = ("utm_source", "utm_medium", "click_id_type", "page_referrer", "site_id")


@dataclass(frozen=True)
class Output:
    """A warehouse table this build writes, the TEMP table holding the run's rows, and
    how its mart is partitioned."""

    table: str
    stage: str
    partition: str  # "date" (date=YYYY-MM-DD) or "month" (month=YYYY-MM)

    def mart_path(self, marts_dir: Path, day: date) -> Path:
        value = day.isoformat() if self.partition == "date" else day.strftime("%Y-%m")
        return marts_dir / self.table / f"{self.partition}={value}" / "data.parquet"


_PUBLISH_LOCK = threading.Lock()

OUTPUTS = (
    Output("sessions", "sessions_this_run", "date"),
    Output("daily_sessions", "daily_sessions_this_run", "date"),
    Output("daily_cost_per_session", "daily_cost_per_session_this_run", "date"),
    Output("daily_site_summary", "daily_site_summary_this_run", "date"),
    Output("monthly_sessions_per_user", "monthly_sessions_per_user_this_run", "month"),
)


@dataclass(frozen=True)
class DayBuild:
    day: date
    rows: dict[str, int]  # warehouse table -> rows written for the day (the month)
    unconverted_values: int  # event amounts in a currency without a rate: not summed
    unconverted_costs: int  # cost rows in a currency without a rate: not summed
    marts: tuple[Path, ...]


def build_day(settings: Settings, day: date) -> DayBuild:
    """Build `day` from the lake and marketing_costs, replace its rows in the warehouse
    and publish its marts. Running it again for the same inputs gives the same rows."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        duckdb.connect(str(settings.warehouse_path)) as con,
        tempfile.TemporaryDirectory(prefix="sessionflow-build-") as scratch,
    ):
        prepare_connection(con, settings)
        lake_files = lake_files_for(settings.lake_dir, day) or [
            _empty_lake_file(Path(scratch), day)
        ]
        params = model_parameters(settings, day, lake_files)
        run_day_models(con, params)

        # Commit and publish one build at a time: days compute in parallel, but the
        # month-to-date row and its mart must reflect every commit before them.
        with _PUBLISH_LOCK:
            con.begin()
            try:
                run_sql_model(con, "persist_day", params)
                run_sql_model(con, "monthly_sessions_per_user", params)
                run_sql_model(con, "persist_month", params)
                con.commit()
            except BaseException:
                con.rollback()
                raise
            rows, marts = _publish_marts(con, settings, day)
        stats = query_sql_model(con, "build_stats", params).to_pylist()[0]
    return DayBuild(
        day=day,
        rows=rows,
        unconverted_values=int(stats["unconverted_values"]),
        unconverted_costs=int(stats["unconverted_costs"]),
        marts=tuple(marts),
    )


def _publish_marts(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date
) -> tuple[dict[str, int], list[Path]]:
    rows: dict[str, int] = {}
    marts: list[Path] = []
    for output in OUTPUTS:
        if output.partition == "month":
            # From the warehouse, not this run: it includes every day committed so far.
            table = con.execute(
                f"SELECT * FROM {output.table} WHERE month = ? ORDER BY ALL",
                [day.strftime("%Y-%m")],
            ).to_arrow_table()
        else:
            table = con.table(output.stage).to_arrow_table()
        rows[output.table] = table.num_rows
        # Written whole, then renamed into place: a reader sees the old day or the new
        # one. A day with no rows still gets its (empty) file, replacing any stale one.
        path = output.mart_path(settings.marts_dir, day)
        write_parquet_atomically(table, path)
        marts.append(path)
    return rows, marts


def prepare_connection(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Connection settings, the warehouse tables (created when missing) and the config
    tables the models read: goals(name, value, counting), currency_rates(currency, rate)."""
    run_sql_model(con, "connection", {})
    run_sql_model(con, "marketing_costs", {})
    run_sql_model(con, "warehouse_tables", {})
    con.register("goals", goals_table(settings))
    con.register("currency_rates", currency_rates_table(settings))


def model_parameters(settings: Settings, day: date, lake_files: Sequence[Path]) -> dict[str, Any]:
    return {
        "run_date": day,
        "timezone": settings.timezone,
        "currency": settings.currency,
        "lake_files": [str(path) for path in lake_files],
    }


def run_day_models(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> None:
    """The day's models into TEMP tables (the *_this_run tables and the stg_ ones);
    nothing persistent is touched. The connection must be prepared."""
    run_sql_model(con, "stg_events", params)
    con.register("traffic_sources", traffic_sources(query_sql_model(con, "first_event_traffic")))
    for name in DAY_MODELS:
        run_sql_model(con, name, params)


def run_sql_model(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> None:
    """Run every statement of pipeline/sql/<name>.sql, each given the parameters it names."""
    for statement in con.extract_statements(read_sql(name)):
        con.execute(statement, _parameters_for(statement, params or {}, name))


def query_sql_model(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> pa.Table:
    """The result of pipeline/sql/<name>.sql, a single query, as Arrow."""
    (statement,) = con.extract_statements(read_sql(name))
    return con.execute(statement, _parameters_for(statement, params or {}, name)).to_arrow_table()


@cache
def read_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def lake_files_for(lake_dir: Path, day: date) -> list[Path]:
    """The lake files a build of `day` reads: that date's partition and its neighbours',
    since sessions cross midnight."""
    return [
        path
        for offset in (-1, 0, 1)
        for path in sorted(
            (lake_dir / EVENTS / f"event_date={day + timedelta(days=offset)}").glob("*.parquet")
        )
    ]


def goals_table(settings: Settings) -> pa.Table:
    names = sorted(settings.goals)
    return pa.table(
        {
            "name": pa.array(names, pa.string()),
            # Via str: 5.0 -> Decimal("5.0"), not the float's binary expansion.
            "value": pa.array([Decimal(str(settings.goals[n])) for n in names], MONEY),
            "counting": pa.array([settings.goal_counting.get(n, "event") for n in names]),
        },
        schema=pa.schema([("name", pa.string()), ("value", MONEY), ("counting", pa.string())]),
    )


def currency_rates_table(settings: Settings) -> pa.Table:
    codes = sorted(settings.currency_rates)
    return pa.table(
        {
            "currency": pa.array(codes, pa.string()),
            "rate": pa.array([settings.currency_rates[c] for c in codes], pa.float64()),
        }
    )


def traffic_sources(inputs: pa.Table) -> pa.Table:
    """The first-event inputs with GA4 source and medium added, by pipeline.channels."""
    inputs = inputs.select(list(_TRAFFIC_INPUTS))
    derived = [_source_medium(**row) for row in inputs.to_pylist()]
    return inputs.append_column(
        "source", pa.array([source for source, _ in derived], pa.string())
    ).append_column("medium", pa.array([medium for _, medium in derived], pa.string()))


def _source_medium(
    utm_source: str | None,
    utm_medium: str | None,
    click_id_type: str | None,
    page_referrer: str | None,
    site_id: str,
) -> tuple[str, str]:
    # Exactly the call pipeline/lake.py makes for the lake's channel_group.
    referrer_host = urlsplit(page_referrer).hostname if page_referrer else None
    return source_medium(utm_source, utm_medium, click_id_type, referrer_host, site_id)


def _parameters_for(
    statement: duckdb.Statement, params: Mapping[str, Any], name: str
) -> dict[str, Any]:
    # DuckDB refuses parameters a statement doesn't name, so each gets just its own.
    missing = statement.named_parameters - params.keys()
    if missing:
        raise ValueError(f"sql/{name}.sql needs parameters {sorted(missing)}")
    return {key: params[key] for key in statement.named_parameters}


def _empty_lake_file(directory: Path, day: date) -> Path:
    """A lake file with no rows, for a day whose partitions are all empty: read_parquet
    needs a file, and costs must still be reported on a day without events."""
    path = directory / f"event_date={day.isoformat()}" / "empty.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(lake_arrow_schema().empty_table(), path)
    return path
