"""Lake compaction: many small cycle files of a closed date -> one file per date.

The consumer writes one file per partition, date and commit cycle, so a quiet stream
leaves many small files. Compacting a date rewrites them as one `compacted-<id>.parquet`
(sorted by site, visitor and time, which also helps readers) and deletes the sources.
DuckDB sorts them under the [warehouse] memory limit, spilling beyond it, and the result
is written a batch at a time: a date of any size compacts in bounded memory.

Safe against crashes and against the consumer writing meanwhile:
- the compacted file lists its sources in its Parquet metadata; an interrupted
  compaction is finished (its leftover sources deleted) before anything else;
- files of a consumer cycle that is still in flight (listed in an inflight manifest)
  are never touched: the consumer may still delete and rewrite them;
- files written after the listing are not sources, so they survive.
Run it where no reader scans the date at the same moment (the daily flow does it before
aggregating), since for an instant both the sources and the result exist.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.duckdb_connections import connect
from pipeline.events.schema import lake_arrow_schema
from pipeline.lake.files import write_atomically
from pipeline.lake.store import (
    PARQUET_OPTIONS,
    Lake,
    in_lake_schema,
    remove_files,
    write_parquet_batches,
)

SOURCES_KEY = b"sessionflow.compacted_from"


@dataclass(frozen=True)
class CompactionResult:
    event_date: str
    sources: int
    rows: int
    target: Path | None


def compact_date(settings: Settings, lake: Lake, event_date: str) -> CompactionResult:
    """Merge `event_date`'s files into one, unless it has one already; `settings`: the
    consumer's state (its in-flight files) and DuckDB's limits."""
    directory = lake.layout.partition_dir(event_date)
    if len(list(itertools.islice(directory.glob("*.parquet"), 2))) < 2:
        # Already compacted (one file) or empty: nothing to merge, and no interrupted
        # compaction to finish (that leaves its result and at least one source). The
        # daily flow calls this for every date of its window; most are like this.
        return CompactionResult(event_date, 0, 0, None)
    finish_interrupted(directory)
    # Listed after the directory's first look and before its sources are: a cycle
    # starting in between has its files in the manifest before it writes them.
    in_flight = in_flight_files(settings.consumer_state_dir)
    sources = sorted(path for path in directory.glob("*.parquet") if str(path) not in in_flight)
    if len(sources) < 2:
        return CompactionResult(event_date, 0, 0, None)
    names = [path.name for path in sources]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    target = directory / f"compacted-{digest}.parquet"
    first_metadata = pq.read_schema(sources[0]).metadata or {}
    schema = lake_arrow_schema().with_metadata(
        {**first_metadata, SOURCES_KEY: json.dumps(names).encode()}
    )
    written: list[int] = []
    write_atomically(
        target, lambda staging: written.append(_write_sorted(settings, sources, schema, staging))
    )
    remove_files(sources)
    return CompactionResult(event_date, len(sources), sum(written), target)


def _write_sorted(settings: Settings, sources: list[Path], schema: pa.Schema, staging: Path) -> int:
    """The rows of `sources` in `schema` (a column added since a file was written is null
    for its rows), sorted by site, visitor, time and event id, then by file and row (as
    they were listed), written to `staging` a batch at a time; returns the rows written."""
    with connect(settings) as con:
        reader = con.execute(
            "SELECT * EXCLUDE (filename, file_row_number) FROM read_parquet($files, "
            "union_by_name = true, hive_partitioning = false, filename = true, "
            "file_row_number = true) "
            "ORDER BY site_id, visitor_id, event_ts, event_id, filename, file_row_number",
            {"files": [str(source) for source in sources]},
        ).to_arrow_reader(PARQUET_OPTIONS["row_group_size"])
        batches = (
            batch
            for rows in reader
            for batch in in_lake_schema(pa.Table.from_batches([rows])).cast(schema).to_batches()
        )
        return write_parquet_batches(staging, schema, batches)


def finish_interrupted(directory: Path) -> None:
    """A compacted file whose sources still exist was interrupted before deleting them."""
    for compacted in directory.glob("compacted-*.parquet"):
        metadata = pq.read_schema(compacted).metadata or {}
        names = json.loads(metadata.get(SOURCES_KEY, b"[]"))
        remove_files(directory / name for name in names if name != compacted.name)


def in_flight_files(consumer_state_dir: Path) -> set[str]:
    files: set[str] = set()
    for manifest in consumer_state_dir.glob("**/inflight.json"):
        try:
            files.update(json.loads(manifest.read_text())["files"])
        except (FileNotFoundError, json.JSONDecodeError):
            continue  # finished (and removed) or being rewritten right now
    return files
