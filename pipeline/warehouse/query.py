"""`sessionflow query SQL`: read-only SQL over the published output tables.

Each table under `<data_dir>/marts/<table>/` (Hive-partitioned Parquet, one file per date
replaced atomically by the flows) is a view of the same name in a private in-memory
DuckDB. Readers therefore never lock the warehouse, never see half a day, and never get
an error while a flow writes. Only read statements are accepted.

The SQL is the user's, so the connection is closed in before it runs (DuckDB's
"Securing DuckDB" settings): after the views are made, it may open files under the marts
directory only (`allowed_directories` + `enable_external_access = false`), loads and
installs no extension, spills nothing to a temporary directory, and `lock_configuration`
refuses any SET that would undo this. A read outside the marts (`read_csv('/etc/passwd')`,
`read_parquet('marts/../x')`), ATTACH, INSTALL/LOAD, COPY or a write is a one-line
SessionflowError (exit 1 from the CLI) and nothing is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
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
    _check_read_only(statements[0])
    # Absolute: the views' globs and the one directory the connection may open must agree
    # whatever the working directory is.
    marts = marts_dir.absolute()
    try:
        con = duckdb.connect(config=_CLOSED_CONFIG)
    except duckdb.Error as exc:
        raise SessionflowError(f"query failed: {_first_line(exc)}") from None
    try:
        for table, pattern in mart_globs(marts).items():
            con.execute(f'CREATE VIEW "{table}" AS {mart_select(table, pattern)}')
        _close_in(con, marts)
        cursor = con.execute(sql)
        columns = [column[0] for column in cursor.description or []]
        return QueryResult(columns, cursor.fetchall())
    except duckdb.PermissionException as exc:
        raise SessionflowError(
            f"query refused: only the marts under {marts} can be read ({_first_line(exc)})"
        ) from None
    except duckdb.Error as exc:
        raise SessionflowError(f"query failed: {_first_line(exc)}") from None
    finally:
        con.close()


# Set when the connection opens: no extension is fetched or loaded behind the user's back
# (httpfs would reach the network), and nothing spills to a `.tmp/` in the working directory.
_CLOSED_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "temp_directory": "",
}


def _close_in(con: duckdb.DuckDBPyConnection, marts: Path) -> None:
    """After the views exist: files under `marts` only, then lock the configuration so a
    SET cannot give any of it back (DuckDB's "Securing DuckDB")."""
    con.execute("SET allowed_directories = ?", [[f"{marts}/"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _check_read_only(statement: Any) -> None:
    kind = statement.type
    if kind == duckdb.StatementType.EXPLAIN:
        # EXPLAIN ANALYZE runs what it explains: `EXPLAIN ANALYZE COPY ... TO` writes a file.
        # So what follows EXPLAIN [ANALYZE] must itself be one read query.
        inner = _explained(statement.query)
        inner_statements = _parse(inner) if inner else []
        if len(inner_statements) != 1 or inner_statements[0].type != duckdb.StatementType.SELECT:
            raise SessionflowError("only read queries are allowed (got explain of a non-read)")
        return
    if kind != duckdb.StatementType.SELECT:
        raise SessionflowError(f"only read queries are allowed (got {kind.name.lower()})")


def _explained(query: str) -> str:
    """The text after `EXPLAIN [ANALYZE]` (comments skipped by DuckDB's own tokenizer)."""
    offsets = [offset for offset, _ in duckdb.tokenize(query)][1:]  # [0] is EXPLAIN
    if offsets and _ANALYZE.match(query, offsets[0]):
        offsets = offsets[1:]
    return query[offsets[0] :] if offsets else ""


_ANALYZE = re.compile(r"ANALY[SZ]E\b", re.IGNORECASE)


def mart_globs(marts_dir: Path) -> dict[str, str]:
    """table name -> glob of its Parquet files, for every published table."""
    return {
        directory.name: str(directory / "*" / "*.parquet")
        for directory in sorted(marts_dir.glob("*"))
        # A view's name is the directory's: only plain identifiers (as every output's is)
        # can be one without quoting trouble; anything else in marts/ is not a table.
        if _IDENTIFIER.fullmatch(directory.name)
        and directory.is_dir()
        and any(directory.glob("*/*.parquet"))
    }


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def mart_select(table: str, pattern: str) -> str:
    """The SELECT that reads a mart as its warehouse table: by name (a day published
    before a column was added lacks it: NULL), its partition column (in the path only)
    first, where the table has it."""
    quoted = pattern.replace("'", "''")  # a data_dir may hold a quote: "/srv/bob's data"
    source = f"read_parquet('{quoted}', hive_partitioning = true, union_by_name = true)"
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
        # A command line's invalid UTF-8 arrives as lone surrogates (surrogateescape),
        # which DuckDB's binding refuses with a TypeError, not a duckdb.Error.
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise SessionflowError("query is not valid UTF-8 text") from None
    try:
        return list(duckdb.extract_statements(sql))
    except duckdb.Error as exc:
        raise SessionflowError(f"query does not parse: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    # An empty message (or one of blanks only) must not crash the error path itself.
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
