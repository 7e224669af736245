"""The Parquet lake (imperative shell): sessionized events and rejected payloads on disk.

    lake/events/event_date=YYYY-MM-DD/<name>.parquet   one row per accepted event
    lake/rejected/rejected_date=YYYY-MM-DD/<name>.parquet   payload (redacted) + reason

`event_date` is the event's date in the property time zone. File names are chosen by the
caller so that a replay writes the same names again: a file is replaced, never doubled.
Every file is written to a temporary name, fsynced, then renamed, so a reader (or a
crash) never sees half a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.channels import default_channel_group, source_medium
from pipeline.event_schema import canonical_arrow_schema, lake_arrow_schema
from pipeline.files import write_atomically
from pipeline.privacy import redact_identifiers
from pipeline.validation import parse_event_ts

EVENTS = "events"
REJECTED = "rejected"
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "row_group_size": 128 * 1024}
REJECTED_SCHEMA = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("payload", pa.string(), nullable=False),  # identifiers redacted
        pa.field("source", pa.string(), nullable=False),  # topic/partition/offset or file:line
        pa.field("rejected_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class RejectedPayload:
    reason: str
    detail: str
    payload: str
    source: str


def events_to_table(events: Iterable[dict[str, Any]]) -> pa.Table:
    """Validated canonical events (event_ts canonical RFC 3339 or epoch micros) -> Arrow."""
    rows = [{**event, "event_ts": parse_event_ts(event["event_ts"])} for event in events]
    return pa.Table.from_pylist(rows, schema=canonical_arrow_schema())


def to_lake_rows(sessionized: pa.Table, ingested_at: datetime) -> pa.Table:
    """Sessionizer output -> the lake's columns: adds channel_group and ingested_at."""
    columns = (
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "click_id_type",
        "page_referrer",
        "site_id",
    )
    values = zip(*(sessionized[name].to_pylist() for name in columns), strict=True)
    channels = pa.array([_channel_group(*row) for row in values], pa.string())
    stamped = sessionized.append_column("channel_group", channels).append_column(
        "ingested_at", pa.array([ingested_at] * sessionized.num_rows, pa.timestamp("us", tz="UTC"))
    )
    return stamped.select(lake_arrow_schema().names).cast(lake_arrow_schema())


class Lake:
    def __init__(self, root: Path, timezone: str) -> None:
        self.root = root
        self.timezone = timezone

    @property
    def events_dir(self) -> Path:
        return self.root / EVENTS

    def event_files(self) -> list[Path]:
        return sorted(self.events_dir.glob("event_date=*/*.parquet"))

    def event_dates(self, rows: pa.Table) -> pa.Array:
        """Each row's date in the property time zone, as YYYY-MM-DD."""
        local = rows["event_ts"].cast(pa.timestamp("us", tz=self.timezone))
        return pc.strftime(local, format="%Y-%m-%d")

    def event_paths(self, rows: pa.Table, name: str) -> list[Path]:
        """The files `write_events(rows, name)` writes: one per event date."""
        dates = pc.unique(self.event_dates(rows)).to_pylist()
        return [self.events_dir / f"event_date={day}" / f"{name}.parquet" for day in dates]

    def write_events(self, rows: pa.Table, name: str) -> list[Path]:
        """One file per event date, `event_date=D/<name>.parquet`; returns their paths."""
        dates = self.event_dates(rows)
        paths = self.event_paths(rows, name)
        for path in paths:
            day = path.parent.name.removeprefix("event_date=")
            write_parquet_atomically(rows.filter(pc.equal(dates, day)), path)
        return paths

    def write_rejected(self, rejects: Sequence[RejectedPayload], name: str) -> Path | None:
        if not rejects:
            return None
        now = datetime.now(UTC)
        table = pa.Table.from_pylist(
            [
                {
                    "reason": item.reason,
                    "detail": redact_identifiers(item.detail),
                    "payload": redact_identifiers(item.payload),
                    "source": item.source,
                    "rejected_at": now,
                }
                for item in rejects
            ],
            schema=REJECTED_SCHEMA,
        )
        path = self.root / REJECTED / f"rejected_date={now.date().isoformat()}" / f"{name}.parquet"
        write_parquet_atomically(table, path)
        return path


def write_parquet_atomically(table: pa.Table, path: Path) -> None:
    write_atomically(path, lambda staging: pq.write_table(table, staging, **PARQUET_OPTIONS))


def remove_files(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


@lru_cache(maxsize=65_536)
def _channel_group(
    utm_source: str | None,
    utm_medium: str | None,
    utm_campaign: str | None,
    click_id_type: str | None,
    page_referrer: str | None,
    site_id: str,
) -> str:
    referrer_host = urlsplit(page_referrer).hostname if page_referrer else None
    source, medium = source_medium(utm_source, utm_medium, click_id_type, referrer_host, site_id)
    return default_channel_group(source, medium, utm_campaign)
