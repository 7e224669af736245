"""The key tests of every build: each model's declared `unique` key and `not_null` columns
(pipeline.warehouse.models), checked on its table once it is built, before the day is
stored. A broken key fails the build in one line that names the model, the key and how
many rows break it, so no wrong row reaches the warehouse or a mart.

The only names in the generated SQL are the model's own (its file's stem) and columns the
table really has; each is quoted. No other value enters a statement.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from pipeline.errors import SessionflowError
from pipeline.warehouse.models import IDENTIFIER, Model, model


def check_model_keys(con: duckdb.DuckDBPyConnection, paths: Iterable[str]) -> None:
    """Check the declared keys of the models at `paths` (built on `con`)."""
    for path in paths:
        check_keys(con, model(path))


def check_keys(con: duckdb.DuckDBPyConnection, declared: Model) -> None:
    if not declared.unique and not declared.not_null:
        return
    columns = set(con.table(_quoted(declared.name)).columns)
    unknown = [c for c in (*declared.unique, *declared.not_null) if c not in columns]
    if unknown:
        raise SessionflowError(
            f"model {declared.name}: its declared key names {', '.join(unknown)}, "
            "which its table does not have"
        )
    table = _quoted(declared.name)
    # One scan for the NULLs of every not_null column, one grouping for the key.
    measures = [f"count(*) FILTER (WHERE {_quoted(c)} IS NULL)" for c in declared.not_null]
    if declared.unique:
        key = ", ".join(_quoted(c) for c in declared.unique)
        measures.append(
            f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {table} "
            f"GROUP BY {key} HAVING count(*) > 1))"
        )
    row = con.execute(f"SELECT {', '.join(measures)} FROM {table}").fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    for column, nulls in zip(declared.not_null, row, strict=False):
        if nulls:
            raise SessionflowError(
                f"model {declared.name}: {nulls} rows have no {column} (declared not_null)"
            )
    if declared.unique and row[-1]:
        raise SessionflowError(
            f"model {declared.name}: {row[-1]} rows share a key "
            f"({', '.join(declared.unique)}) declared unique"
        )


def _quoted(name: str) -> str:
    # Declared names are plain identifiers (models.declarations refuses any other);
    # quoted all the same, so that a keyword such as `date` is a column.
    if not IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a table or column name")
    return f'"{name}"'
