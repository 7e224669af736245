"""The lake summaries: each lake partition summarised at session and transaction grain
(sql/summaries/, stored by sql/publish/store_summaries.sql), so a day's build reads those
rows instead of the raw events of the weeks around it.

A partition's summary is a pure function of its files, stored with their fingerprint
(partition_fingerprint) and made again whenever that changes: new or late events,
replays, re-attribution. Compaction, which renames files but keeps their rows, leaves it
as it is. A new release's summary models (summary_version) make every summary again. So
the summaries are a cache of the lake: a build over them gives the rows a build over the
raw events would, and dropping them (all together: publish/drop_lake_summaries.sql) only
costs their rebuild.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.events.schema import lake_arrow_schema
from pipeline.lake.paths import LakeLayout
from pipeline.lake.store import footer_range
from pipeline.warehouse.model_keys import check_model_keys
from pipeline.warehouse.models import query_sql_model, read_sql, run_sql_model

# Besides the summary models, what a summary's rows depend on (summary_version).
SUMMARY_SOURCES = ("macros/lake_events", "publish/lake_summaries", "publish/store_summaries")
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


class SummaryAccess:
    """Days built in parallel read the summaries together; summarising a partition waits
    until none is reading, and reading waits for it (one process: other processes are
    kept out by pipeline.warehouse.lock)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._writing)
            self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._writing and not self._readers)
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()


SUMMARIES = SummaryAccess()


def refresh_summaries(
    con: duckdb.DuckDBPyConnection, layout: LakeLayout, dates: Iterable[date], scratch: Path
) -> list[date]:
    """Summarise again each partition of `dates` whose stored summary was not made from
    its files as they are on disk now, or by these summary models; return those dates.
    `scratch` holds an empty lake file in today's schema (empty_lake_file), so a column
    added since older files were written is NULL for them instead of missing."""
    dates = sorted(set(dates))
    if not _outdated(con, layout, dates):
        return []
    with SUMMARIES.writing(), WRITE_LOCK:
        # Listed again under the lock, from disk: a parallel build that listed the lake
        # earlier must never put back an older summary than the one just stored.
        if _stored_version(con) not in (None, summary_version()):
            _recreate_tables(con)
        stale = _outdated(con, layout, dates)
        for day in stale:
            files = layout.files_on(day)
            _summarise(con, day, [*files, empty_lake_file(scratch)], _stamp(files))
    return stale


def outdated(con: duckdb.DuckDBPyConnection, layout: LakeLayout, dates: Iterable[date]) -> bool:
    """Whether any partition of `dates` has no current summary (an empty partition never
    summarised needs none)."""
    return bool(_outdated(con, layout, sorted(set(dates))))


def _outdated(con: duckdb.DuckDBPyConnection, layout: LakeLayout, dates: list[date]) -> list[date]:
    rows = query_sql_model(con, "checks/summarised_partitions").to_pylist()
    stored = {row["event_date"]: row["files"] for row in rows}
    return [day for day in dates if stored.get(day, _stamp([])) != _stamp(layout.files_on(day))]


def _stamp(files: list[Path]) -> str:
    """What a stored summary was made from: these summary models, and the files."""
    return f"{summary_version()} {partition_fingerprint(tuple(files))}"


@cache
def summary_version() -> str:
    """A digest of what makes a summary besides the lake: the summary models, the lake
    events macro, the tables' DDL and the lake's schema. When it changes (a release), the
    summary tables are made again from scratch."""
    texts = [read_sql(name) for name in (*SUMMARY_MODELS, *SUMMARY_SOURCES)]
    text = "\n".join([*texts, str(lake_arrow_schema())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _stored_version(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = query_sql_model(con, "checks/summarised_partitions").to_pylist()
    versions = {str(row["files"]).split(" ", 1)[0] for row in rows}
    return None if not versions else (versions.pop() if len(versions) == 1 else "mixed")


def _recreate_tables(con: duckdb.DuckDBPyConnection) -> None:
    run_sql_model(con, "publish/drop_lake_summaries")
    run_sql_model(con, "publish/lake_summaries")


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
