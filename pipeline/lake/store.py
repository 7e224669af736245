"""The Parquet lake (imperative shell): sessionized events and rejected payloads on disk.

Paths come from pipeline.lake.paths. File names are chosen by the caller so that a replay
writes the same names again: a file is replaced, never doubled. Every file is written to
a temporary name, fsynced, then renamed, so a reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.duckdb_connections import connect
from pipeline.events.personal_data import redact_personal_data
from pipeline.events.schema import canonical_arrow_schema, lake_arrow_schema
from pipeline.events.site_rules import AUTHENTICATED
from pipeline.events.timestamps import parse_event_ts
from pipeline.lake.files import write_atomically
from pipeline.lake.paths import LakeLayout
from pipeline.privacy.redaction import redact_payload
from pipeline.sessions.attribution import attribute
from pipeline.sessions.sessionizer import SessionRules

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "row_group_size": 128 * 1024}
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),  # field names, redacted values
        pa.field("source", pa.string(), nullable=False),  # topic/partition/offset or file:line
        pa.field("rejected_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class RejectedPayload:
    reason: str
    detail: str
    payload: str
    source: str  # topic/partition/offset, or file:line

    def redacted(self) -> dict[str, str]:
        """The record kept for diagnosis (lake/rejected/, the DLQ): the reason, the detail
        and the payload's field names with redacted values (pipeline.privacy.redaction),
        never the raw payload."""
        return {
            "reason": self.reason,
            "detail": _valid_text(redact_personal_data(self.detail)),
            "payload": _valid_text(redact_payload(self.payload)),
            "source": self.source,
        }


def events_to_table(events: Iterable[dict[str, Any]]) -> pa.Table:
    """Validated canonical events (event_ts canonical RFC 3339 or epoch micros) -> Arrow."""
    rows = [{**event, "event_ts": parse_event_ts(event["event_ts"])} for event in events]
    return pa.Table.from_pylist(rows, schema=canonical_arrow_schema())


def _valid_text(text: str) -> str:
    """`text` as valid UTF-8: an unpaired surrogate from hostile JSON becomes "?"."""
    return text.encode("utf-8", "replace").decode("utf-8")


def to_lake_rows(sessionized: pa.Table, ingested_at: datetime) -> pa.Table:
    """Sessionizer output -> the lake's columns: adds attribution and ingested_at, and
    spells out a missing trust (authenticated: pipeline.events.site_rules)."""
    stamped = attribute(sessionized).append_column(
        "ingested_at", pa.array([ingested_at] * sessionized.num_rows, pa.timestamp("us", tz="UTC"))
    )
    trust = stamped.schema.get_field_index("trust")
    stamped = stamped.set_column(
        trust, "trust", pc.fill_null(stamped["trust"], pa.scalar(AUTHENTICATED))
    )
    return in_lake_schema(stamped)


def in_lake_schema(rows: pa.Table) -> pa.Table:
    """`rows` in today's lake columns, their schema metadata kept; a column added since
    they were written (such as trust) is null for them."""
    schema = lake_arrow_schema()
    columns = [
        rows[field.name] if field.name in rows.column_names
        else pa.nulls(rows.num_rows, field.type)
        for field in schema
    ]  # fmt: skip
    table = pa.Table.from_arrays(columns, names=schema.names).cast(schema)
    return table.replace_schema_metadata(rows.schema.metadata)


# Each event file's footer records the sessionization rules it was written under: a
# build cannot re-apply them, so `status` compares them with the current settings.
RULES_METADATA_KEY = b"sessionflow.sessionization"


class Lake:
    def __init__(self, root: Path, timezone: str, rules: SessionRules | None = None) -> None:
        self.layout = LakeLayout(root)
        self.timezone = timezone
        self._metadata = {RULES_METADATA_KEY: _rules_json(rules)} if rules is not None else {}

    def event_dates(self, rows: pa.Table) -> pa.Array:
        """Each row's date in the property time zone, as YYYY-MM-DD."""
        local = rows["event_ts"].cast(pa.timestamp("us", tz=self.timezone))
        return pc.strftime(local, format="%Y-%m-%d")

    def event_paths(self, rows: pa.Table, name: str) -> list[Path]:
        """The files `write_events(rows, name)` writes: one per event date."""
        dates = pc.unique(self.event_dates(rows)).to_pylist()
        return [self.layout.event_file(day, name) for day in dates]

    def write_events(self, rows: pa.Table, name: str) -> list[Path]:
        """One file per event date; returns their paths."""
        dates = self.event_dates(rows)
        paths = []
        for day in pc.unique(dates).to_pylist():
            path = self.layout.event_file(day, name)
            day_rows = rows.filter(pc.equal(dates, day))
            if self._metadata:
                day_rows = day_rows.replace_schema_metadata(self._metadata)
            write_parquet_atomically(day_rows, path)
            paths.append(path)
        return paths

    def write_rejected(self, rejects: Sequence[RejectedPayload], name: str) -> Path | None:
        if not rejects:
            return None
        now = datetime.now(UTC)
        table = pa.Table.from_pylist(
            [{**item.redacted(), "rejected_at": now} for item in rejects], schema=REJECTED_SCHEMA
        )
        path = self.layout.rejected_file(now.date(), name)
        write_parquet_atomically(table, path)
        return path


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    write_atomically(path, lambda staging: pq.write_table(table, staging, **PARQUET_OPTIONS))


def write_parquet_batches(path: Path, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> int:
    """`batches` (in `schema`) into the Parquet file `path` one at a time, under
    PARQUET_OPTIONS, so a file of any size is written in bounded memory; returns the
    rows written. No batch at all still writes an empty file in `schema`."""
    rows = 0
    with pq.ParquetWriter(path, schema, compression=PARQUET_OPTIONS["compression"]) as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=PARQUET_OPTIONS["row_group_size"])
            rows += batch.num_rows
    return rows


def remove_files(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def newest_events(settings: Settings) -> dict[str, tuple[datetime, int]]:
    """Per site: the newest event time in the lake and how many events it holds."""
    files = [str(path) for path in LakeLayout(settings.lake_dir).event_files()]
    if not files:
        return {}
    with connect(settings) as con:
        rows = con.execute(
            "SELECT site_id, max(event_ts), count(*) FROM read_parquet(?::VARCHAR[]) "
            "GROUP BY site_id ORDER BY site_id",
            [files],
        ).fetchall()
    return {site: (newest, count) for site, newest, count in rows}


def sessionization_drift(layout: LakeLayout, current: SessionRules) -> str | None:
    """One line when lake files were written under other sessionization rules than
    `current`: naming the settings, and the re-import that would apply them."""
    now = json.loads(_rules_json(current))
    written: list[dict[str, Any]] = []
    for path in layout.event_files():
        metadata = pq.read_schema(path).metadata or {}
        if RULES_METADATA_KEY in metadata:
            written.append(json.loads(metadata[RULES_METADATA_KEY]))
    changed = sorted({key for rules in written for key in now if rules.get(key) != now[key]})
    if not changed:
        return None
    return (
        f"sessionization settings differ from those the lake was written with "
        f"({', '.join(changed)}): a build cannot re-apply them; they apply to events "
        "ingested from now on. To apply them to history, import the raw events again into "
        "a new data_dir (`sessionflow import FILE`) and backfill there"
    )


def _rules_json(rules: SessionRules) -> bytes:
    fields = dataclasses.asdict(rules)
    fields.pop("retention_micros")  # memory bound only: it changes no session
    if not fields["site_timezones"]:
        # As files written before sites had their own zones record it: not at all.
        fields.pop("site_timezones")
    return json.dumps(fields, sort_keys=True).encode()


def footer_range(metadata: pq.FileMetaData, column: str) -> tuple[Any, Any] | None:
    """(min, max) of `column` over the file's row groups, from its statistics."""
    if metadata.num_row_groups == 0:
        return None
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if column not in names:
        return None
    index = names.index(column)
    lows, highs = [], []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return None
        lows.append(stats.min)
        highs.append(stats.max)
    return min(lows), max(highs)
