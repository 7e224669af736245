"""The declared model graph (pipeline/warehouse/models.py): each model creates one table
named after its file and declares exactly what it reads, as DuckDB's own parser finds it;
the build order follows the declarations, and a cycle fails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from graphlib import CycleError
from typing import Any

import duckdb
import pytest

from pipeline.warehouse.models import (
    CONFIG_SOURCES,
    DAY_MODELS,
    LAKE,
    PERIOD_MODELS,
    SETUP_MODELS,
    Model,
    build_order,
    declarations,
    models_in,
    read_sql,
    run_sql_model,
)
from pipeline.warehouse.summaries import SUMMARY_MODELS

# A model's one statement, after its header: CREATE OR REPLACE TEMP TABLE <name> AS <query>.
_CREATE = re.compile(
    r"(?:\s*--[^\n]*\n)*\s*CREATE\s+OR\s+REPLACE\s+TEMP\s+TABLE\s+(\w+)\s+AS\s+(.*)",
    re.DOTALL | re.IGNORECASE,
)
# Table functions that read no table and no file.
_GENERATORS = {"range", "generate_series", "unnest"}
# Table functions that read lake files: DuckDB's, and the macro every lake reader uses
# (sql/macros/lake_events.sql).
_LAKE_READERS = {"read_parquet", "parquet_scan", "lake_events"}


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


def created_and_read(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], set[str]]:
    """The tables `sql`'s statements create, and the tables and sources they read."""
    created: list[str] = []
    read: set[str] = set()
    for statement in con.extract_statements(sql):
        match = _CREATE.fullmatch(statement.query)
        assert match, f"not a CREATE OR REPLACE TEMP TABLE ... AS: {statement.query[:200]}"
        created.append(match[1])
        read |= references(con, match[2])
    return created, read


def references(con: duckdb.DuckDBPyConnection, query: str) -> set[str]:
    """The tables a SELECT reads, by DuckDB's parser (json_serialize_sql parses without
    binding, so parameters and not-yet-built tables are no trouble; get_table_names binds
    and refuses both). A CTE's name is no table within its WITH; read_parquet is `lake`."""
    row = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    assert row is not None
    tree = json.loads(row[0])
    assert not tree["error"], tree
    found: set[str] = set()
    _walk(tree["statements"], frozenset(), found)
    return found


def _walk(node: Any, ctes: frozenset[str], found: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, ctes, found)
        return
    if not isinstance(node, dict):
        return
    if isinstance(node.get("cte_map"), dict):
        ctes = ctes | {entry["key"] for entry in node["cte_map"]["map"]}
    if node.get("type") == "BASE_TABLE":
        qualified = ".".join(
            part for part in (node["catalog_name"], node["schema_name"], node["table_name"]) if part
        )
        if qualified not in ctes:
            found.add(qualified)
    elif node.get("type") == "TABLE_FUNCTION":
        function = node["function"]["function_name"]
        if function in _LAKE_READERS:
            found.add(LAKE)
        elif function not in _GENERATORS:
            found.add(f"{function}()")
    for value in node.values():
        _walk(value, ctes, found)


@pytest.fixture(scope="module")
def sources(con: duckdb.DuckDBPyConnection) -> set[str]:
    """What a model may read besides models: the config tables, the lake, and the
    warehouse's tables as the setup DDL creates them."""
    with duckdb.connect() as warehouse:
        for name in SETUP_MODELS:
            run_sql_model(warehouse, name)
        rows = warehouse.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    return {name for (name,) in rows} | set(CONFIG_SOURCES) | {LAKE}


def declaration_errors(
    con: duckdb.DuckDBPyConnection, model: Model, sql: str, known: set[str]
) -> list[str]:
    created, read = created_and_read(con, sql)
    errors = []
    if created != [model.name]:
        errors.append(f"{model.path} creates {created}, not just {model.name}")
    if undeclared := read - set(model.reads):
        errors.append(f"{model.name} reads {sorted(undeclared)} without declaring them")
    if unread := set(model.reads) - read:
        errors.append(f"{model.name} declares {sorted(unread)} but does not read them")
    if missing := set(model.reads) - known:
        errors.append(f"{model.name} declares {sorted(missing)}, which do not exist")
    return errors


def test_every_model_creates_its_table_and_declares_what_it_reads(
    con: duckdb.DuckDBPyConnection, sources: set[str]
) -> None:
    models = models_in()
    assert len(models) >= 14, sorted(models)
    known = sources | set(models)
    errors = [
        error
        for model in models.values()
        for error in declaration_errors(con, model, read_sql(model.path), known)
    ]
    assert errors == []
    # Every model runs, in a build or after it is stored; every day model has a grain.
    assert sorted((*DAY_MODELS, *PERIOD_MODELS)) == sorted(m.path for m in models.values())
    assert all(models[path.rsplit("/", 1)[1]].grain for path in DAY_MODELS)


def test_the_lake_summary_models_declare_what_they_read_too(
    con: duckdb.DuckDBPyConnection, sources: set[str]
) -> None:
    summaries = [declarations(path, read_sql(path)) for path in SUMMARY_MODELS]
    known = sources | {m.name for m in summaries}
    errors = [
        error for m in summaries for error in declaration_errors(con, m, read_sql(m.path), known)
    ]
    assert errors == []
    # pipeline.warehouse.summaries runs them in this order: each after what it reads.
    names = [m.name for m in summaries]
    assert all(
        names.index(read) < names.index(m.name)
        for m in summaries
        for read in m.reads
        if read in names
    )


def test_an_undeclared_or_missing_read_is_an_error(
    con: duckdb.DuckDBPyConnection, sources: set[str]
) -> None:
    sql = (
        "CREATE OR REPLACE TEMP TABLE t AS\n"
        "WITH stg_events AS (SELECT * FROM goals)\n"
        "SELECT * FROM stg_events, read_parquet($lake_files::VARCHAR[]) AS l\n"
        "WHERE l.x IN (SELECT x FROM sessions)"
    )
    known = sources | {"stg_events"}
    declared = Model("marts/t", "one row", ("goals", LAKE, "sessions", "stg_events", "nowhere"))
    assert declaration_errors(con, declared, sql, known) == [
        # The CTE named stg_events is no read of the model stg_events.
        "t declares ['nowhere', 'stg_events'] but does not read them",
        "t declares ['nowhere'], which do not exist",
    ]
    declared = Model("marts/t", "one row", ("goals",))
    assert declaration_errors(con, declared, sql, known) == [
        "t reads ['lake', 'sessions'] without declaring them"
    ]
    two = "CREATE OR REPLACE TEMP TABLE t AS SELECT 1;\nCREATE OR REPLACE TEMP TABLE u AS SELECT 1"
    assert declaration_errors(con, Model("marts/t", "one row", ()), two, known) == [
        "marts/t creates ['t', 'u'], not just t"
    ]


def test_a_cte_hides_a_table_only_inside_its_with(con: duckdb.DuckDBPyConnection) -> None:
    query = (
        "SELECT * FROM (WITH sessions AS (SELECT 1 AS x) SELECT * FROM sessions) "
        "JOIN sessions USING (x) JOIN range(3) AS r ON true"
    )
    assert references(con, query) == {"sessions"}


def test_the_order_follows_the_declarations_and_a_cycle_fails() -> None:
    graph = {"d": ["b", "c", "lake"], "c": ["a"], "b": ["a"], "a": ["goals"]}
    # Each after what it reads; models ready together by name; sources are no models.
    assert build_order(graph) == ("a", "b", "c", "d")
    with pytest.raises(CycleError) as cycle:
        build_order({**graph, "a": ["d"]})
    assert set(cycle.value.args[1]) >= {"a", "d"}

    positions = {path.rsplit("/", 1)[1]: i for i, path in enumerate(DAY_MODELS)}
    for name, model in models_in().items():
        if name in positions:
            assert all(
                positions[read] < positions[name] for read in model.reads if read in positions
            )
    assert PERIOD_MODELS == (
        "marts/monthly_sessions_per_user_this_run",
        "marts/weekly_sessions_per_user_this_run",
    )


def test_declarations_are_read_from_the_header_only() -> None:
    sql = (
        "-- grain: one row per session (session_id)\n"
        "-- reads: stg_events, goals\n"
        "-- unique: session_id\n"
        "-- not_null: session_id, site_id\n"
        "-- sessions: prose, where a later `-- reads: x` line is not a declaration\n"
        "-- reads: other\n"
        "CREATE OR REPLACE TEMP TABLE s AS SELECT 1"
    )
    assert declarations("sessions/s", sql) == Model(
        "sessions/s",
        "one row per session (session_id)",
        ("stg_events", "goals"),
        ("session_id",),
        ("session_id", "site_id"),
    )
    with pytest.raises(ValueError, match=r"sql/marts/m\.sql declares no grain: at its top"):
        declarations("marts/m", "-- reads: goals\nSELECT 1")
    with pytest.raises(ValueError, match=r"unique: 'a b' is not a table or column name"):
        declarations("marts/m", "-- grain: g\n-- reads: goals\n-- unique: a b\nSELECT 1")
