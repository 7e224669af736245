"""`sessionflow import FILE`: historical events through the consumer's own path, in batch.

JSON Lines or Parquet, in any line order: each event is validated (history window, like
the consumer), de-duplicated within the file and against what the lake already holds for
those dates, sessionized by the same Sessionizer in one final release, and written to the
lake as `import-<content hash>` files. Importing the same file again adds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.events.reasons import MAX_LISTED_REJECTS
from pipeline.events.timestamps import TimestampWindow, history_window, now_micros, to_micros
from pipeline.lake.processing import ProcessingState, accept_json, accept_value, process
from pipeline.lake.store import Lake, RejectedPayload
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import Sessionizer, SessionRules

_FOREVER_MICROS = 2**62

Progress = Callable[[int], None]


@dataclass
class ImportReport:
    accepted: int = 0
    rejected: int = 0
    duplicates_in_file: int = 0
    already_in_lake: int = 0
    reject_lines: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"accepted {self.accepted}, rejected {self.rejected}, duplicates "
            f"{self.duplicates_in_file + self.already_in_lake} ({self.duplicates_in_file} in "
            f"the file, {self.already_in_lake} already in the lake)"
        )


def import_file(settings: Settings, path: Path, progress: Progress) -> ImportReport:
    rules = SessionRules.from_settings(settings)
    lake = Lake(settings.lake_dir, settings.timezone, rules)
    window = history_window(settings.validation)
    report = ImportReport()
    accepted: list[dict[str, Any]] = []
    rejects: list[RejectedPayload] = []
    now = now_micros()
    for outcome, size in _accepted_records(path, now, window):
        progress(size)
        if isinstance(outcome, RejectedPayload):
            rejects.append(outcome)
        else:
            accepted.append(outcome)
    report.rejected = len(rejects)
    report.reject_lines = [
        f"{item.source}: {item.reason}: {item.detail}" for item in rejects[:MAX_LISTED_REJECTS]
    ]

    state = ProcessingState(
        Deduplicator(window_micros=_FOREVER_MICROS),
        Sessionizer(rules),
    )
    processed = process(
        state,
        accepted,
        ingested_at=datetime.now(UTC),
        final=True,
        drop_known=lambda events: _not_in_lake(lake, events),
    )
    report.duplicates_in_file = processed.duplicates
    report.already_in_lake = processed.known
    name = f"import-{_content_hash(path)}"
    if processed.rows is not None:
        report.files = lake.write_events(processed.rows, name)
        report.accepted = processed.written
    lake.write_rejected(rejects, name)
    return report


def _accepted_records(
    path: Path, now: int, window: TimestampWindow
) -> Iterator[tuple[dict[str, Any] | RejectedPayload, int]]:
    """(event or rejection, bytes read) for each record of the file, in file order."""
    if path.suffix == ".parquet":
        parquet = pq.ParquetFile(path)
        row = 0
        for batch in parquet.iter_batches(batch_size=10_000):
            size = batch.nbytes // max(1, batch.num_rows)
            for record in batch.to_pylist():
                row += 1
                raw = _from_parquet(record)
                yield accept_value(raw, f"row {row}", now=now, window=window), size
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield accept_json(line, f"line {number}", now=now, window=window), len(line)


def _from_parquet(record: dict[str, Any]) -> dict[str, Any]:
    stamp = record.get("event_ts")
    if isinstance(stamp, datetime):
        record["event_ts"] = to_micros(stamp.astimezone(UTC))
    return record


def _not_in_lake(lake: Lake, events: pa.Table) -> pa.Table:
    if events.num_rows == 0:
        return events
    days = pc.unique(lake.event_dates(events)).to_pylist()
    files = [str(path) for day in days for path in lake.layout.files_on(day)]
    if not files:
        return events
    # An event id is unique per site (pipeline.sessions.dedup).
    known = duckdb.execute(
        "SELECT DISTINCT site_id, event_id FROM read_parquet(?)", [files]
    ).to_arrow_table()
    return events.join(known, ["site_id", "event_id"], join_type="left anti")


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
