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
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.errors import SessionflowError
from pipeline.events.reasons import MAX_LISTED_REJECTS, Reason
from pipeline.events.schema import lake_arrow_schema
from pipeline.events.site_rules import ANONYMOUS, SiteRules
from pipeline.events.timestamps import TimestampWindow, history_window, now_micros, to_micros
from pipeline.lake.processing import ProcessingState, accept_json, accept_value, process
from pipeline.lake.store import Lake, RejectedPayload
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import Sessionizer, SessionRules

_FOREVER_MICROS = 2**62

Progress = Callable[[int], None]  # so many more records read
# Lines told to `progress` at a time: a call per line would cost more than the display.
PROGRESS_EVERY = 1_000


def _nothing() -> None:
    pass


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


def import_file(
    settings: Settings, path: Path, progress: Progress, reading_done: Callable[[], None] = _nothing
) -> ImportReport:
    """Import `path`; `progress` hears of the records read (lines, blank ones too, a
    thousand at a time; Parquet rows, a batch at a time), and `reading_done` when the
    file is read and the rest (de-duplicating, sessionizing, writing: about a third of
    the time) begins."""
    rules = SessionRules.from_settings(settings)
    lake = Lake(settings.lake_dir, settings.timezone, rules)
    window = history_window(settings.validation)
    site_rules = SiteRules.from_settings(settings)
    report = ImportReport()
    accepted: list[dict[str, Any]] = []
    rejects: list[RejectedPayload] = []
    now = now_micros()
    for outcome in _accepted_records(path, now, window, site_rules, progress):
        if isinstance(outcome, RejectedPayload):
            rejects.append(outcome)
        else:
            accepted.append(outcome)
    reading_done()
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
    path: Path, now: int, window: TimestampWindow, rules: SiteRules, progress: Progress
) -> Iterator[dict[str, Any] | RejectedPayload]:
    """The event or rejection of each record of the file, in file order."""
    # A directory, FIFO or device (/dev/zero) would block or never end.
    if not path.is_file():
        what = "not found" if not path.exists() else "not a regular file"
        raise SessionflowError(f"cannot import {path}: {what}")
    try:
        if path.suffix == ".parquet":
            yield from _parquet_records(path, now, window, rules, progress)
            return
        with path.open("rb") as handle:
            number = 0
            for number, line in _bounded_lines(handle):
                if number % PROGRESS_EVERY == 0:
                    progress(PROGRESS_EVERY)
                source = f"line {number}"
                if line is None:
                    yield RejectedPayload(Reason.BODY_TOO_LARGE, _TOO_LONG, "", source)
                elif line.strip():
                    yield accept_json(line, source, now=now, window=window, rules=rules)
            progress(number % PROGRESS_EVERY)
    except OSError as exc:
        raise SessionflowError(f"cannot read {path}: {exc.strerror or exc}") from None


def parquet_rows(path: Path) -> int:
    """The rows of a Parquet file, from its footer."""
    try:
        rows: int = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, ValueError, OSError) as exc:
        raise _unreadable(path, exc) from None
    return rows


def _parquet_records(
    path: Path, now: int, window: TimestampWindow, rules: SiteRules, progress: Progress
) -> Iterator[dict[str, Any] | RejectedPayload]:
    row = 0
    for records in _parquet_batches(path):
        for record in records:
            row += 1
            raw = _from_parquet(record)
            yield accept_value(raw, f"row {row}", now=now, window=window, rules=rules)
        progress(len(records))


def _parquet_batches(path: Path) -> Iterator[list[dict[str, Any]]]:
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=10_000)
        while (batch := next(batches, None)) is not None:
            yield batch.to_pylist()
    except (pa.ArrowException, ValueError, OverflowError) as exc:
        # Not Parquet, or a value Python cannot hold (a timestamp past year 9999): the file
        # as a whole is unreadable, and nothing has been written yet.
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> SessionflowError:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SessionflowError(f"{path} is not a readable Parquet file: {text}")


# An event is a few kilobytes (the collector takes at most 130 kB per request); a longer
# line is rejected without being held in memory whole.
MAX_LINE_BYTES = 1 << 20
_TOO_LONG = f"line longer than {MAX_LINE_BYTES} bytes"


def _bounded_lines(handle: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line or None when too long) for each line."""
    number = 0
    while line := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield number, line
            continue
        while not line.endswith(b"\n") and (line := handle.readline(1 << 16)):
            pass
        yield number, None


def _from_parquet(record: dict[str, Any]) -> dict[str, Any]:
    stamp = record.get("event_ts")
    if isinstance(stamp, datetime):
        record["event_ts"] = to_micros(stamp.astimezone(UTC))
    return record


def _not_in_lake(lake: Lake, events: pa.Table) -> pa.Table:
    """`events` but those the lake already holds: the same (site_id, event_id) from an
    event at least as trusted (pipeline.sessions.dedup's rule)."""
    if events.num_rows == 0:
        return events
    days = pc.unique(lake.event_dates(events)).to_pylist()
    files = [str(path) for day in days for path in lake.layout.files_on(day)]
    if not files:
        return events
    # Read in today's columns: a file written before `trust` existed gives null there.
    lake_schema = lake_arrow_schema()
    columns = pa.schema([lake_schema.field(name) for name in (*_ID_KEYS, "trust")])
    known = ds.dataset(files, schema=columns, format="parquet").to_table()
    known_anonymous = pc.fill_null(pc.equal(known["trust"], ANONYMOUS), False)
    known_ids = known.select(_ID_KEYS).group_by(_ID_KEYS).aggregate([])
    known_authenticated = (
        known.filter(pc.invert(known_anonymous)).select(_ID_KEYS).group_by(_ID_KEYS).aggregate([])
    )
    anonymous = pc.fill_null(pc.equal(events["trust"], ANONYMOUS), False)
    indexed = events.select(_ID_KEYS).append_column("row", pa.array(range(events.num_rows)))
    kept = pa.concat_tables(
        [
            indexed.filter(anonymous).join(known_ids, _ID_KEYS, join_type="left anti"),
            indexed.filter(pc.invert(anonymous)).join(
                known_authenticated, _ID_KEYS, join_type="left anti"
            ),
        ]
    )
    return events.take(pc.take(kept["row"], pc.sort_indices(kept["row"])))


# An event id is unique per site (pipeline.sessions.dedup).
_ID_KEYS = ["site_id", "event_id"]


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]
