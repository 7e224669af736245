"""The lake summaries: each lake partition summarised at session and transaction grain
(sql/summaries/, stored by sql/publish/store_summaries.sql), so a day's build reads those
rows instead of the raw events of the weeks around it.

A partition's summary is a pure function of its files, stored with their fingerprint
(partition_fingerprint) and made again whenever that changes: new or late events,
replays, re-attribution. Compaction, which renames files but keeps their rows, leaves it
as it is. So the summaries are a cache of the lake: a build over them gives the rows a
build over the raw events would, and deleting them only costs their rebuild.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.events.schema import lake_arrow_schema
from pipeline.lake.paths import LakeLayout
from pipeline.lake.store import footer_range
from pipeline.warehouse.model_keys import check_model_keys
from pipeline.warehouse.models import query_sql_model, run_sql_model

SUMMARY_MODELS = (
    "summaries/summary_events",
    "summaries/summary_sessions",
    "summaries/summary_transactions",
    "summaries/summary_refunds",
)
# Serialises this process's writes to the warehouse's catalog and its commits (builds of
# days in parallel, and their summaries); other processes are kept out by
# pipeline.warehouse.lock.
WRITE_LOCK = threading.Lock()


def refresh_summaries(
    con: duckdb.DuckDBPyConnection, files_by_date: dict[date, list[Path]], scratch: Path
) -> list[date]:
    """Summarise again each partition of `files_by_date` (its files as the caller listed
    them) whose stored summary was made from other files; return those dates. `scratch`
    holds an empty lake file in today's schema (empty_lake_file), so a column added since
    older files were written is NULL for them instead of missing."""
    wanted = {day: partition_fingerprint(tuple(files)) for day, files in files_by_date.items()}
    if not outdated(con, wanted):
        return []
    with WRITE_LOCK:
        # Again under the lock: a parallel build of a neighbouring day may have just
        # summarised the same partitions.
        stale = outdated(con, wanted)
        for day in stale:
            _summarise(con, day, [*files_by_date[day], empty_lake_file(scratch)], wanted[day])
    return stale


def outdated(con: duckdb.DuckDBPyConnection, wanted: dict[date, str]) -> list[date]:
    """The dates whose stored summary is not of the files `wanted` (date -> fingerprint;
    an empty partition never summarised needs none)."""
    rows = query_sql_model(con, "checks/summarised_partitions").to_pylist()
    stored = {row["event_date"]: row["files"] for row in rows}
    return sorted(
        day
        for day, fingerprint in wanted.items()
        if stored.get(day, partition_fingerprint(())) != fingerprint
    )


def empty_lake_file(directory: Path) -> Path:
    """An empty lake file in today's schema, under `directory` (made once): read_parquet
    needs a file on a day without events, and its columns fill those older files lack."""
    path = LakeLayout(directory).event_file("1970-01-01", "empty")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(lake_arrow_schema().empty_table(), path)
    return path


def _summarise(
    con: duckdb.DuckDBPyConnection, day: date, files: list[Path], fingerprint: str
) -> None:
    params = {"partition_files": [str(path) for path in files]}
    for name in SUMMARY_MODELS:
        run_sql_model(con, name, params)
    check_model_keys(con, SUMMARY_MODELS)
    con.begin()
    try:
        run_sql_model(con, "publish/store_summaries", {"event_date": day, "files": fingerprint})
    except BaseException:
        con.rollback()
        raise
    con.commit()


def partition_fingerprint(paths: tuple[Path, ...]) -> str:
    """What one partition's files hold, from their footers (rows, newest ingestion and
    attribution rules, from the Parquet footers): the lake summaries are remade when it changes."""
    return PartitionSummary.of(paths).as_text()


@dataclass
class PartitionSummary:
    rows: int = 0
    newest_ingestion: str = ""
    oldest_rules: int | None = None  # attribution rules versions
    newest_rules: int | None = None
    unsummarised: list[str] = field(default_factory=list)  # name:size of files without stats

    @classmethod
    def of(cls, paths: tuple[Path, ...]) -> PartitionSummary:
        summary = cls()
        for path in paths:
            summary.add(path)
        return summary

    def as_text(self) -> str:
        return json.dumps(vars(self), sort_keys=True)

    def add(self, path: Path) -> None:
        metadata = pq.ParquetFile(path).metadata
        self.rows += metadata.num_rows
        ingested = footer_range(metadata, "ingested_at")
        rules = footer_range(metadata, "attribution_rules")
        if ingested is None or rules is None:
            self.unsummarised = sorted([*self.unsummarised, f"{path.name}:{path.stat().st_size}"])
            return
        self.newest_ingestion = max(self.newest_ingestion, ingested[1].isoformat())
        low, high = rules
        self.oldest_rules = low if self.oldest_rules is None else min(self.oldest_rules, low)
        self.newest_rules = high if self.newest_rules is None else max(self.newest_rules, high)
