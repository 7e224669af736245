"""Raw records -> lake rows: the one path the streaming consumer and `import` share.

    accept_json / accept_value   decode and validate one record, then apply the collector's
                                 page rule (URLs scrubbed, utm_* and click id type from
                                 page_url where the event gives none): a canonical event
                                 (event_ts as epoch microseconds) or a RejectedPayload
    accept_json_batch            the same for many JSON records at once: a bulk fast path
                                 (pipeline.events.batch_decode, pipeline.lake.page_fields)
                                 for the records it can vouch for, accept_json for the rest
                                 (and for a whole batch under BULK_MIN_RECORDS), so
                                 outcomes and reasons are those of accept_json
    process                      accepted events -> de-duplicate -> sessionize -> lake rows

Each raw record yields exactly one outcome (Snowplow's rule): an accepted event that then
lands or is counted as a duplicate, or a rejection that goes to the dead-letter path.
Streamed equals batch because both callers run exactly this code; they differ only in
when they release (the consumer per commit cycle, `import` once, `final`) and in what
they already know (`import` drops events the lake holds).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.batch_decode import decode_batch
from pipeline.events.decode import decode_json
from pipeline.events.reasons import Rejected
from pipeline.events.schema import canonical_arrow_schema
from pipeline.events.site_rules import SiteRules
from pipeline.events.timestamps import TimestampWindow
from pipeline.events.validation import Event, validate_event
from pipeline.lake.page_fields import scrub_page_columns
from pipeline.lake.store import RejectedPayload, events_to_table, to_lake_rows
from pipeline.privacy.urls import scrub_page_fields
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import Sessionizer


@dataclass
class ProcessingState:
    """What processing carries from one batch to the next (per Kafka partition)."""

    dedup: Deduplicator
    sessionizer: Sessionizer


@dataclass(frozen=True)
class Processed:
    rows: pa.Table | None  # lake rows released by this call, None when nothing was ready
    duplicates: int  # dropped by the deduplicator
    known: int  # dropped because the caller already holds them (`drop_known`)
    late: int  # arrived behind what an earlier release passed

    @property
    def written(self) -> int:
        return self.rows.num_rows if self.rows is not None else 0


def accept_json(
    payload: bytes,
    source: str,
    *,
    now: int,
    window: TimestampWindow,
    rules: SiteRules | None = None,
) -> Event | RejectedPayload:
    """One JSON record (a Kafka message, a JSON Lines line) -> event or rejection.
    `rules`: the sites' settings (SiteRules.from_settings); None: the defaults."""
    try:
        return _accepted(decode_json(payload), now, window, rules)
    except Rejected as rejected:
        return _rejection(rejected, payload.decode("utf-8", errors="replace"), source)


def accept_value(
    raw: object,
    source: str,
    *,
    now: int,
    window: TimestampWindow,
    rules: SiteRules | None = None,
) -> Event | RejectedPayload:
    """One decoded record (e.g. a Parquet row) -> event or rejection. Only a rejection
    needs the record as text, so only a rejection pays for it."""
    try:
        return _accepted(raw, now, window, rules)
    except Rejected as rejected:
        return _rejection(rejected, json.dumps(raw, default=str), source)


@dataclass(frozen=True)
class AcceptedBatch:
    events: pa.Table  # accepted events in record order (canonical Arrow schema)
    rejects: list[RejectedPayload]  # in record order


# Below this many records a batch takes the per-event path whole: the bulk path has a
# fixed cost of a few dozen Arrow calls (measured crossover: ~100 records).
BULK_MIN_RECORDS = 100


def accept_json_batch(
    payloads: Sequence[bytes],
    source: Callable[[int], str],
    *,
    now: int,
    window: TimestampWindow,
    rules: SiteRules | None = None,
    bulk_min_records: int = BULK_MIN_RECORDS,
) -> AcceptedBatch:
    """Many JSON records -> their outcomes, exactly as `accept_json` on each would give
    them. `source(i)` names record i; it is asked only for records that take the
    per-event path (rejections need it). Tests set `bulk_min_records` to 0 so that small
    batches take the bulk path too."""
    if len(payloads) < bulk_min_records:
        # A trickle (a live stream at low traffic): the bulk path's fixed cost, a few
        # dozen Arrow calls, would outweigh the per-event path it saves.
        events, positions = no_events(), pa.array([], pa.int64())
        unsure = list(range(len(payloads)))
    else:
        decoded = decode_batch(payloads, now_micros=now, window=window, rules=rules)
        events, decided = scrub_page_columns(decoded.table)
        positions, unsure = decoded.positions, decoded.unsure
        if not pc.all(decided).as_py():
            undecided = pc.filter(positions, pc.invert(decided)).to_pylist()
            unsure = sorted(unsure + undecided)
            events, positions = events.filter(decided), pc.filter(positions, decided)
    rejects: list[RejectedPayload] = []
    slow: list[Event] = []
    slow_positions: list[int] = []
    for index in unsure:
        outcome = accept_json(payloads[index], source(index), now=now, window=window, rules=rules)
        if isinstance(outcome, RejectedPayload):
            rejects.append(outcome)
        else:
            slow.append(outcome)
            slow_positions.append(index)
    if slow:  # put the per-event path's events back in record order
        merged = pa.concat_tables([events, events_to_table(slow)])
        order = pc.sort_indices(pa.concat_arrays([positions, pa.array(slow_positions, pa.int64())]))
        events = merged.take(order)
    return AcceptedBatch(events, rejects)


def process(
    state: ProcessingState,
    accepted: list[Event] | pa.Table,
    *,
    ingested_at: datetime,
    final: bool,
    cutoff_floor: int | None = None,
    drop_known: Callable[[pa.Table], pa.Table] | None = None,
) -> Processed:
    """De-duplicate `accepted` (validated events as dicts, or as canonical Arrow rows from
    `accept_json_batch`; first arrival wins, but never an anonymous event over an
    authenticated one: pipeline.sessions.dedup), sessionize, and return the lake rows of
    every event the sessionizer releases: all of them when `final`, else those behind the
    watermark (or `cutoff_floor`)."""
    if not isinstance(accepted, pa.Table):
        accepted = events_to_table(accepted)
    duplicates, late = state.dedup.duplicates, state.sessionizer.late_events
    fresh = state.dedup.first_arrivals(accepted)
    new = drop_known(fresh) if drop_known is not None else fresh
    state.sessionizer.add(new)
    released = state.sessionizer.release(final=final, cutoff_floor=cutoff_floor)
    return Processed(
        rows=to_lake_rows(released, ingested_at) if released is not None else None,
        duplicates=state.dedup.duplicates - duplicates,
        known=fresh.num_rows - new.num_rows,
        late=state.sessionizer.late_events - late,
    )


def _accepted(raw: object, now: int, window: TimestampWindow, rules: SiteRules | None) -> Event:
    """Validated, then given the page fields the collector gives (the one rule,
    pipeline.privacy.urls.scrub_page_fields): events that never passed the collector
    (`import`, `produce --file`) are scrubbed and take utm_* and the click id type from
    page_url; the collector's own come out unchanged."""
    event = validate_event(raw, now_micros=now, window=window, ts_as_micros=True, rules=rules)
    return scrub_page_fields(event)


def no_events() -> pa.Table:
    """An empty batch of accepted events."""
    return canonical_arrow_schema().empty_table()


def _rejection(rejected: Rejected, text: str, source: str) -> RejectedPayload:
    return RejectedPayload(rejected.reason, rejected.detail, text, source)
