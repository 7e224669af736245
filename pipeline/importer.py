"""`sessionflow import FILE`: historical events through the consumer's own path, in batch.

JSON Lines or Parquet, in any line order: each event is validated (history window, like
the consumer), de-duplicated within the file and against what the lake already holds for
those dates, sessionized by the same Sessionizer in one final release, and written to the
lake as `import-<content hash>` files. Importing the same file again adds nothing.
"""

from __future__ import annotations

import hashlib
import json
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
from pipeline.dedup import Deduplicator
from pipeline.dialects import decode_json
from pipeline.lake import Lake, RejectedPayload, events_to_table, to_lake_rows
from pipeline.sessionizer import Sessionizer, SessionRules
from pipeline.validation import Rejected, history_window, now_micros, to_micros, validate_event

MAX_LISTED_REJECTS = 20
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
    lake = Lake(settings.lake_dir, settings.timezone)
    window = history_window(settings.validation)
    report = ImportReport()
    accepted: list[dict[str, Any]] = []
    rejects: list[RejectedPayload] = []
    now = now_micros()
    for where, raw, text, size in _records(path):
        progress(size)
        try:
            if isinstance(raw, Rejected):
                raise raw
            accepted.append(validate_event(raw, now_micros=now, window=window, ts_as_micros=True))
        except Rejected as rejected:
            report.rejected += 1
            rejects.append(RejectedPayload(rejected.reason, rejected.detail, text, where))
            if len(report.reject_lines) < MAX_LISTED_REJECTS:
                report.reject_lines.append(f"{where}: {rejected.line()}")

    dedup = Deduplicator(window_micros=_FOREVER_MICROS)
    unique = dedup.first_arrivals(events_to_table(accepted))
    report.duplicates_in_file = dedup.duplicates
    new = _not_in_lake(lake, unique)
    report.already_in_lake = unique.num_rows - new.num_rows

    name = f"import-{_content_hash(path)}"
    sessionizer = Sessionizer(SessionRules.from_settings(settings))
    sessionizer.add(new)
    released = sessionizer.release(final=True)
    if released is not None:
        report.files = lake.write_events(to_lake_rows(released, datetime.now(UTC)), name)
        report.accepted = released.num_rows
    lake.write_rejected(rejects, name)
    return report


def _records(path: Path) -> Iterator[tuple[str, object, str, int]]:
    """(where, payload or Rejected, original text, bytes read) for each record."""
    if path.suffix == ".parquet":
        parquet = pq.ParquetFile(path)
        row = 0
        for batch in parquet.iter_batches(batch_size=10_000):
            size = batch.nbytes // max(1, batch.num_rows)
            for record in batch.to_pylist():
                row += 1
                yield f"row {row}", _from_parquet(record), json.dumps(record, default=str), size
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            text = line.decode("utf-8", errors="replace").rstrip("\n")
            try:
                yield f"line {number}", decode_json(line), text, len(line)
            except Rejected as rejected:
                yield f"line {number}", rejected, text, len(line)


def _from_parquet(record: dict[str, Any]) -> dict[str, Any]:
    stamp = record.get("event_ts")
    if isinstance(stamp, datetime):
        record["event_ts"] = to_micros(stamp.astimezone(UTC))
    return record


def _not_in_lake(lake: Lake, events: pa.Table) -> pa.Table:
    if events.num_rows == 0:
        return events
    days = pc.unique(lake.event_dates(events)).to_pylist()
    files = [
        str(f) for day in days for f in (lake.events_dir / f"event_date={day}").glob("*.parquet")
    ]
    if not files:
        return events
    known = duckdb.execute("SELECT event_id FROM read_parquet(?)", [files]).to_arrow_table()
    return events.filter(pc.invert(pc.is_in(events["event_id"], known["event_id"])))


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
