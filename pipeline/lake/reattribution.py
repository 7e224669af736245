"""`sessionflow reattribute`: bring lake files up to the current attribution rules.

Source, medium and channel group are derived once, at ingestion, and stored with the
version of the rules (pipeline.sessions.attribution.RULES_VERSION). Files written before
that column existed, or under older rules, are rewritten in place (atomically, same name,
same rows) with the current attribution; the next build of their days picks it up.
Files of a consumer cycle still in flight are left for the consumer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.lake.compaction import in_flight_files
from pipeline.lake.paths import LakeLayout
from pipeline.lake.store import footer_range, in_lake_schema, write_parquet_atomically
from pipeline.sessions import attribution


@dataclass(frozen=True)
class Reattribution:
    files: int  # rewritten
    rows: int


def needs_reattribution(path: Path) -> bool:
    """Whether `path` holds rows without, or below, the current attribution rules. Read
    from the footer's statistics (every build asks, for every file it reads)."""
    metadata = pq.ParquetFile(path).metadata
    if "attribution_rules" not in metadata.schema.names:
        return True
    span = footer_range(metadata, "attribution_rules")
    if span is None:  # no rows, or a writer without statistics
        versions = pq.read_table(path, columns=["attribution_rules"])["attribution_rules"]
        span = (pc.min(versions).as_py(), None)
    return span[0] is not None and span[0] < attribution.RULES_VERSION


def reattribute_lake(layout: LakeLayout, consumer_state_dir: Path) -> Reattribution:
    skipped = in_flight_files(consumer_state_dir)
    files = rows = 0
    for path in layout.event_files():
        if str(path) in skipped or not needs_reattribution(path):
            continue
        table = pq.ParquetFile(path).read()  # the file alone, without its partition column
        stale = [name for name in attribution.OUTPUTS if name in table.column_names]
        updated = attribution.attribute(table.drop_columns(stale))
        rows_out = in_lake_schema(updated)
        # Keep the file's metadata: a compacted file lists its sources there.
        write_parquet_atomically(rows_out.replace_schema_metadata(table.schema.metadata), path)
        files, rows = files + 1, rows + table.num_rows
    return Reattribution(files, rows)
