"""`sessionflow query SQL`: read-only SQL over the published output tables.

Each table under `<data_dir>/marts/<table>/` (Hive-partitioned Parquet, one file per date
replaced atomically by the flows) is a view of the same name in a private in-memory
DuckDB. Readers therefore never lock the warehouse, never see half a day, and never get
an error while a flow writes. Only read statements are accepted.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from pipeline.errors import SessionflowError
from pipeline.warehouse.publish import OUTPUTS

_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_query(marts_dir: Path, sql: str) -> QueryResult:
    statements = _parse(sql)
    if len(statements) != 1:
        raise SessionflowError(f"give exactly one statement, got {len(statements)}")
    if statements[0].type not in _READ_ONLY:
        raise SessionflowError(
            f"only read queries are allowed (got {statements[0].type.name.lower()})"
        )
    con = duckdb.connect()
    try:
        for table, pattern in mart_globs(marts_dir).items():
            con.execute(f'CREATE VIEW "{table}" AS {mart_select(table, pattern)}')
        cursor = con.execute(sql)
        columns = [column[0] for column in cursor.description or []]
        return QueryResult(columns, cursor.fetchall())
    except duckdb.Error as exc:
        raise SessionflowError(f"query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def mart_globs(marts_dir: Path) -> dict[str, str]:
    """table name -> glob of its Parquet files, for every published table."""
    return {
        directory.name: str(directory / "*" / "*.parquet")
        for directory in sorted(marts_dir.glob("*"))
        if directory.is_dir() and any(directory.glob("*/*.parquet"))
    }


def mart_select(table: str, pattern: str) -> str:
    """The SELECT that reads a mart as its warehouse table: by name (a day published
    before a column was added lacks it: NULL), its partition column (in the path only)
    first, where the table has it."""
    source = f"read_parquet('{pattern}', hive_partitioning = true, union_by_name = true)"
    key = _PARTITION_COLUMNS.get(table)
    if key is None:
        return f"SELECT * FROM {source}"
    return f'SELECT "{key}", * EXCLUDE ("{key}") FROM {source}'


# Tables whose partition column is one of their own columns (the sessions mart is
# partitioned by date= but keeps its session_date).
_PARTITION_COLUMNS = {output.table: output.key for output in OUTPUTS if output.key == output.period}


def render(result: QueryResult, output: str) -> str:
    if output == "json":
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        return json.dumps(rows, default=_json_value, indent=2)
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(result.rows)
        return buffer.getvalue().rstrip("\n")
    return _table(result)


def _parse(sql: str) -> list[Any]:
    try:
        return list(duckdb.extract_statements(sql))
    except duckdb.Error as exc:
        raise SessionflowError(f"query does not parse: {str(exc).splitlines()[0]}") from None


def _json_value(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _table(result: QueryResult) -> str:
    cells = [[_cell(value) for value in row] for row in result.rows]
    widths = [
        max(len(name), *(len(row[i]) for row in cells)) if cells else len(name)
        for i, name in enumerate(result.columns)
    ]
    line = "  ".join(name.ljust(width) for name, width in zip(result.columns, widths, strict=True))
    rule = "  ".join("-" * width for width in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, rule, *body, f"({len(cells)} rows)"])


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
