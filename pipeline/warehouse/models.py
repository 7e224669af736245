"""The SQL models: the `.sql` files under sql/, what each declares, the build order
computed from those declarations, and how a statement is run.

    sql/staging/   stg_site_currencies, stg_events, stg_transactions,
                   stg_touches, stg_costs: each site's currency factors; the lake's and the
                   costs' rows, cleaned
    sql/sessions/  session_facts, sessions_this_run, session_users_this_run: one row per
                   session
    sql/marts/     session_totals, the day's rows of the daily tables, the week's and the
                   month's sessions per user
    sql/publish/   the warehouse's tables, the metric formulas as macros (metrics.sql),
                   cost loading: DDL and loading statements, not models (SETUP_MODELS run
                   on every connection)
    sql/checks/    quality checks, build statistics (queries, not models)

A model is one file under staging/, sessions/ or marts/ that creates one TEMP table named
after the file (a `_this_run` table holds the run's rows of the warehouse table of that
name). Its header declares, before its prose:

    -- grain: one row per session (session_id)
    -- reads: stg_events, stg_day_users, stg_transactions, stg_touches, goals
    -- unique: session_id
    -- not_null: session_id, site_id, session_date

`reads` names the models and the sources it reads: the config tables (goals,
currency_rates, site_settings), warehouse tables, and `lake` for the lake files given as
parameters. `unique` is one key (several columns: a composite key) and `not_null` its
columns that must be set; both may be left out. The build order is computed from `reads`
(DAY_MODELS, PERIOD_MODELS); pipeline.warehouse.model_keys checks `unique` and `not_null`
in every build; tests/unit/warehouse/test_model_graph.py holds `reads` to what each
statement really references.

SQL is only ever read from these files and run with named parameters ($run_date,
$timezone, $currency, $lake_files, ...): no statement is assembled from values in Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.warehouse.publish import PERIOD_OUTPUTS

SQL_DIR = Path(__file__).parent / "sql"
# The folders whose files are models.
MODEL_FOLDERS = ("staging", "sessions", "marts")
# The sources a model may read besides models and warehouse tables: the config tables
# (pipeline.warehouse.build.register_config_tables) and the lake files given as parameters.
CONFIG_SOURCES = ("goals", "currency_rates", "site_settings")
LAKE = "lake"

# Connection settings, the metric macros (publish/metrics.sql) and the warehouse's
# tables, created when missing: DDL, not models.
SETUP_MODELS = (
    "publish/connection",
    "macros/lake_events",
    "macros/site_amount",
    "publish/metrics",
    "publish/lake_summaries",
    "publish/marketing_costs",
    "publish/warehouse_tables",
    "publish/build_manifest",
)

_DECLARATION = re.compile(r"--\s*(grain|reads|unique|not_null):(.*)")
IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class Model:
    """A model's declarations; `path` is its file under sql/ without `.sql`."""

    path: str
    grain: str
    reads: tuple[str, ...]
    unique: tuple[str, ...] = ()
    not_null: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The table it creates: its file's stem."""
        return self.path.rsplit("/", 1)[-1]


def declarations(path: str, sql: str) -> Model:
    """The declarations at the top of a model's SQL (before its first other line)."""
    stem = path.rsplit("/", 1)[-1]
    if not IDENTIFIER.fullmatch(stem):
        raise ValueError(f"sql/{path}.sql: a model's file names its table; {stem!r} cannot")
    found: dict[str, str] = {}
    for line in sql.splitlines():
        match = _DECLARATION.fullmatch(line.strip())
        if match is None:
            break
        key, value = match[1], match[2].strip()
        if key in found:
            raise ValueError(f"sql/{path}.sql declares {key}: twice")
        found[key] = value
    for required in ("grain", "reads"):
        if not found.get(required):
            raise ValueError(f"sql/{path}.sql declares no {required}: at its top")
    lists = {key: _names(path, key, found.get(key, "")) for key in ("reads", "unique", "not_null")}
    return Model(path, found["grain"], lists["reads"], lists["unique"], lists["not_null"])


def _names(path: str, key: str, value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    for name in names:
        if not IDENTIFIER.fullmatch(name):
            raise ValueError(f"sql/{path}.sql: {key}: {name!r} is not a table or column name")
    if len(set(names)) != len(names):
        raise ValueError(f"sql/{path}.sql: {key}: names a table or column twice")
    return names


def model(path: str) -> Model:
    """The declarations of sql/<path>.sql."""
    return declarations(path, read_sql(path))


def models_in(sql_dir: Path = SQL_DIR) -> dict[str, Model]:
    """Every model under `sql_dir`, by name."""
    found: dict[str, Model] = {}
    for folder in MODEL_FOLDERS:
        for file in sorted((sql_dir / folder).glob("*.sql")):
            declared = declarations(f"{folder}/{file.stem}", file.read_text(encoding="utf-8"))
            if declared.name in found:
                raise ValueError(f"two models are named {declared.name}")
            found[declared.name] = declared
    return found


def build_order(graph: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """The models of `graph` (name -> the names it reads; a name that is no key is a
    source), each after every model it reads: graphlib's topological order, each batch
    ready together sorted by name, so it is the same every run. A cycle raises
    graphlib.CycleError, which names it."""
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(name for name in ready if name in graph)
        sorter.done(*ready)
    return tuple(order)


def day_and_period_models(models: Mapping[str, Model]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The paths of the day's models and of the period models, each in build order. The
    period models fill the week's and the month's rows (publish.PERIOD_OUTPUTS' stages)
    from the warehouse, so they run after the day is stored, in the same transaction;
    so does any model that reads one of them."""
    period_stages = {o.stage for o in PERIOD_OUTPUTS}
    order = build_order({name: m.reads for name, m in models.items()})
    period: set[str] = set()
    for name in order:  # each model after what it reads, so those are classified already
        if name in period_stages or any(read in period for read in models[name].reads):
            period.add(name)
    return (
        tuple(models[name].path for name in order if name not in period),
        tuple(models[name].path for name in order if name in period),
    )


# One day's models, each a TEMP table built from the ones before it (dbt-snowplow-web
# style: events -> sessions -> daily tables); then the period models, after the day is
# stored.
DAY_MODELS, PERIOD_MODELS = day_and_period_models(models_in())


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
