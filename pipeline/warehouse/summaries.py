"""The lake summaries: each lake partition summarised at session and transaction grain
(sql/summaries/, stored by sql/publish/store_summaries.sql), so a day's build reads those
rows instead of the raw events of the weeks around it.

A partition's summary is a pure function of its files, stored with their fingerprint
(pipeline.warehouse.manifest.partition_fingerprint) and made again whenever that
changes: new or late events, replays, re-attribution. Compaction, which renames files
but keeps their rows, leaves it as it is. So the summaries are a cache of the lake: a
build over them gives the rows a build over the raw events would, and deleting them only
costs their rebuild.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import duckdb

from pipeline.warehouse.manifest import partition_fingerprint
from pipeline.warehouse.models import query_sql_model, run_sql_model

SUMMARY_MODELS = (
    "summaries/summary_events",
    "summaries/summary_sessions",
    "summaries/summary_transactions",
    "summaries/summary_refunds",
)


def refresh_summaries(
    con: duckdb.DuckDBPyConnection,
    files_by_date: dict[date, list[Path]],
    empty_file: Path,
    write_lock: threading.Lock,
) -> list[date]:
    """Summarise again each partition of `files_by_date` (its files as the build listed
    them) whose stored summary was made from other files; return those dates. An empty
    `empty_file` in today's schema gives a column added since older files were written.
    `write_lock` serialises this process's writes to the warehouse."""
    wanted = {day: partition_fingerprint(tuple(files)) for day, files in files_by_date.items()}
    if not _outdated(con, wanted):
        return []
    with write_lock:
        # Again under the lock: a parallel build of a neighbouring day may have just
        # summarised the same partitions.
        outdated = _outdated(con, wanted)
        for day in outdated:
            _summarise(con, day, [*files_by_date[day], empty_file], wanted[day])
    return outdated


def _outdated(con: duckdb.DuckDBPyConnection, wanted: dict[date, str]) -> list[date]:
    """The dates whose stored summary is not of the files wanted (an empty partition
    never summarised needs none)."""
    rows = query_sql_model(con, "checks/summarised_partitions").to_pylist()
    stored = {row["event_date"]: row["files"] for row in rows}
    return sorted(
        day
        for day, fingerprint in wanted.items()
        if stored.get(day, partition_fingerprint(())) != fingerprint
    )


def _summarise(
    con: duckdb.DuckDBPyConnection, day: date, files: list[Path], fingerprint: str
) -> None:
    params = {"partition_files": [str(path) for path in files]}
    for name in SUMMARY_MODELS:
        run_sql_model(con, name, params)
    con.begin()
    try:
        run_sql_model(con, "publish/store_summaries", {"event_date": day, "files": fingerprint})
    except BaseException:
        con.rollback()
        raise
    con.commit()
