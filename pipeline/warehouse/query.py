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

Its cost is bounded too (`QueryLimits`): a timer interrupts the connection after the time
limit, DuckDB's `memory_limit` is set before the configuration is locked, csv and json are
written as DuckDB yields rows (a chunk at a time, never the whole result in Python), and
the table format shows at most `max_rows` rows. Text from the data is shown, never acted
on (`pipeline.safe_text`): no spreadsheet formula in a csv cell, no control character on
the terminal.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from pipeline.config import WarehouseSettings
from pipeline.duckdb_connections import connect_without_spilling
from pipeline.errors import SessionflowError
from pipeline.safe_text import for_csv, for_terminal
from pipeline.warehouse.publish import OUTPUTS

_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

# The defaults of `sessionflow query --timeout / --memory-limit / --max-rows` (the memory
# limit's: [warehouse] memory_limit's, which the CLI passes).
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_LIMIT: str = WarehouseSettings.model_fields["memory_limit"].default
DEFAULT_MAX_ROWS = 10_000
# Rows fetched from DuckDB at a time: csv and json write each chunk before the next is
# fetched, so a result of any size holds about this many rows in Python.
FETCH_ROWS = 10_000


@dataclass(frozen=True)
class QueryLimits:
    """What one query may take: `timeout_s` of DuckDB's time (running the query and
    fetching its rows; not the time a slow reader of the output takes), `memory_limit`
    in DuckDB (as [warehouse] memory_limit takes it, e.g. "1GB" or "50%"; nothing spills
    to disk, so a query that needs more fails; `memory_limit_from` names where it was
    set), `threads` DuckDB's (None: one per core), and `max_rows` rows shown by the table
    format (csv and json stream every row)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    max_rows: int = DEFAULT_MAX_ROWS
    threads: int | None = None
    memory_limit_from: str = "--memory-limit"


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_query(marts_dir: Path, sql: str, limits: QueryLimits = QueryLimits()) -> QueryResult:
    """Every row of `sql`'s result, in memory (for callers that know it is small)."""
    with _executed(marts_dir, sql, limits) as (columns, chunks):
        return QueryResult(columns, [row for chunk in chunks for row in chunk])


def write_query(
    marts_dir: Path,
    sql: str,
    output: str,
    write: Callable[[str], object],
    limits: QueryLimits = QueryLimits(),
) -> None:
    """`sql`'s result in `output` format, written piece by piece as DuckDB yields it."""
    with _executed(marts_dir, sql, limits) as (columns, chunks):
        _WRITERS[output](columns, chunks, write, limits.max_rows)


def render(result: QueryResult, output: str, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    """`result` in `output` format, as one string."""
    pieces: list[str] = []
    _WRITERS[output](result.columns, iter([result.rows]), pieces.append, max_rows)
    return "".join(pieces).rstrip("\n")


@contextmanager
def _executed(
    marts_dir: Path, sql: str, limits: QueryLimits
) -> Iterator[tuple[list[str], Iterator[list[tuple[Any, ...]]]]]:
    """The result's column names and its rows in chunks, on a closed-in connection that is
    interrupted after `limits.timeout_s` of work; any DuckDB error becomes one line."""
    statements = _parse(sql)
    if len(statements) != 1:
        raise SessionflowError(f"give exactly one statement, got {len(statements)}")
    _check_read_only(statements[0])
    # Absolute: the views' globs and the one directory the connection may open must agree
    # whatever the working directory is.
    marts = marts_dir.absolute()
    try:
        con = connect_without_spilling(limits.memory_limit, limits.threads, _CLOSED_CONFIG)
    except duckdb.Error as exc:
        raise SessionflowError(f"query failed: {_first_line(exc)}") from None
    clock = _DuckDBClock(con, limits.timeout_s)
    try:
        for table, pattern in mart_globs(marts).items():
            con.execute(f'CREATE VIEW "{table}" AS {mart_select(table, pattern)}')
        _close_in(con, marts)
        cursor = clock.run(con.execute, sql)
        columns = [column[0] for column in cursor.description or []]
        yield columns, iter(lambda: clock.run(cursor.fetchmany, FETCH_ROWS), [])
    except duckdb.InterruptException:
        raise SessionflowError(
            f"query stopped after its time limit of {limits.timeout_s:g} s (--timeout)"
        ) from None
    except duckdb.OutOfMemoryException as exc:
        raise SessionflowError(
            f"query needs more than its memory limit of {limits.memory_limit} "
            f"({limits.memory_limit_from}): {_first_line(exc)}"
        ) from None
    except duckdb.PermissionException as exc:
        raise SessionflowError(
            f"query refused: only the marts under {marts} can be read ({_first_line(exc)})"
        ) from None
    except duckdb.Error as exc:
        raise SessionflowError(f"query failed: {_first_line(exc)}") from None
    finally:
        con.close()


class _DuckDBClock:
    """The time limit, counted while DuckDB works (running the query, fetching a chunk),
    not while a slow reader of the output (`| less`) holds the writing of a chunk: each
    call gets a timer for the time left, which interrupts the connection when it ends."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self.con = con
        self.left = seconds

    def run(self, call: Callable[..., _T], *args: Any) -> _T:
        if self.left <= 0:
            raise duckdb.InterruptException("time limit reached")
        timer = threading.Timer(self.left, self.con.interrupt)
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        try:
            return call(*args)
        finally:
            timer.cancel()
            self.left -= time.monotonic() - started


_T = TypeVar("_T")


# Set when the connection opens: no extension is fetched or loaded behind the user's back
# (httpfs would reach the network); connect_without_spilling spills nothing.
_CLOSED_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
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


# -- the formats: each writes its rows as they come --------------------------------------

_Chunks = Iterable[list[tuple[Any, ...]]]


def _write_csv(
    columns: list[str], chunks: _Chunks, write: Callable[[str], object], max_rows: int
) -> None:
    """Every row, a chunk per write. Text cells are guarded (`safe_text.for_csv`):
    controls shown, and a cell a spreadsheet would run as a formula starts with `'`;
    numbers stay numbers."""
    write(_csv_lines([[for_csv(name) for name in columns]]))
    for chunk in chunks:
        # Only text is guarded: a number stays a number (-1.5), a date a date.
        write(_csv_lines([[for_csv(v) if type(v) is str else v for v in row] for row in chunk]))


def _csv_lines(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write_json(
    columns: list[str], chunks: _Chunks, write: Callable[[str], object], max_rows: int
) -> None:
    """Every row, as an array of row objects, one object a line, a chunk per write. A NaN
    or infinite number is null: JSON has no NaN. Text is ASCII with escapes, so no
    control character reaches a terminal."""
    write("[")
    separator = "\n"
    for chunk in chunks:
        lines = [_json_object(dict(zip(columns, row, strict=True))) for row in chunk]
        write(separator + ",\n".join(lines))
        separator = ",\n"
    write("\n]\n" if separator != "\n" else "]\n")


def _json_object(record: dict[str, object]) -> str:
    try:
        return json.dumps(record, default=_json_default, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere in the row: rare, so checked here
        return json.dumps(_json_value(record), default=_json_default, allow_nan=False)


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):  # DuckDB's LIST and ARRAY
        return [_json_value(item) for item in value]
    if isinstance(value, dict):  # STRUCT and MAP, and the row itself
        return {key: _json_value(item) for key, item in value.items()}
    return value


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def _write_table(
    columns: list[str], chunks: _Chunks, write: Callable[[str], object], max_rows: int
) -> None:
    """The first `max_rows` rows, aligned (every control character shown, not acted on);
    the rest are counted, not kept, and the last line says how many were left out."""
    cells: list[list[str]] = []
    total = 0
    for chunk in chunks:
        room = max_rows - len(cells)
        cells += [[for_terminal(_cell(value)) for value in row] for row in chunk[:room]]
        total += len(chunk)
    names = [for_terminal(name) for name in columns]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(names)]
    line = "  ".join(name.ljust(width) for name, width in zip(names, widths, strict=True))
    rule = "  ".join("-" * width for width in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    shown = (
        f"({total} rows)"
        if total == len(cells)
        else f"({len(cells)} of {total} rows shown: --max-rows, or --format csv for all)"
    )
    write("\n".join([line, rule, *body, shown]) + "\n")


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


_WRITERS: dict[str, Callable[[list[str], _Chunks, Callable[[str], object], int], None]] = {
    "csv": _write_csv,
    "json": _write_json,
    "table": _write_table,
}
