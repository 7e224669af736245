"""The cost schema has one owner (pipeline/warehouse/cost_schema.py); everything else that
spells its columns is held to it here."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb

from pipeline.dev.generator import COST_COLUMNS
from pipeline.warehouse.cost_schema import COLUMNS, COST_SCHEMA, CostRow
from pipeline.warehouse.models import run_sql_model

DOCS = Path(__file__).resolve().parents[3] / "docs" / "tables.md"
DUCKDB_TYPES = {
    "date32[day]": "DATE",
    "string": "VARCHAR",
    "decimal128(18, 4)": "DECIMAL(18,4)",
    "int64": "BIGINT",
}


def test_the_warehouse_table_has_the_schemas_columns_types_and_nullability() -> None:
    with duckdb.connect() as con:
        run_sql_model(con, "publish/marketing_costs")
        described = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'marketing_costs' ORDER BY ordinal_position"
        ).fetchall()
    expected = [
        (f.name, DUCKDB_TYPES[str(f.type)], "YES" if f.nullable else "NO") for f in COST_SCHEMA
    ]
    assert described == [*expected, ("loaded_at", "TIMESTAMP WITH TIME ZONE", "NO")]


def test_a_cost_row_has_the_schemas_fields_in_order() -> None:
    assert tuple(field.name for field in dataclasses.fields(CostRow)) == COLUMNS


def test_the_generator_writes_the_loaders_columns() -> None:
    assert tuple(COST_COLUMNS) == COLUMNS


def test_the_docs_name_every_column() -> None:
    section = DOCS.read_text().split("## marketing_costs", 1)[1].split("\n#", 1)[0]
    documented = set(re.findall(r"`(\w+)`", section))
    assert {*COLUMNS, "loaded_at"} <= documented
