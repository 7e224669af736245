"""The sessionizer: pure, deterministic session ids for canonical events (functional core).

No Kafka, no files: Arrow tables in, Arrow tables out, so the streaming consumer, the
batch import and property tests share exactly this code.

Rules (GA4 defaults):
- a session belongs to (site_id, visitor_id);
- an event's client `session_id` (GA4 ga_session_id) defines its session, wherever its
  events fall in time;
- an event without one joins the visitor's open client session when it comes within
  the inactivity timeout of that session's last event (GA4 stitches a server-side
  purchase sent without ga_session_id into the visit that made it);
- otherwise a gap longer than the inactivity timeout starts a new session; optionally
  so does local midnight (property time zone) or a change of campaign;
- a session id is a hash of the site, the visitor and the session's first event (time,
  event_id), or of the client session id: the same events give the same ids.

Why a watermark: a session's first event must be known before its id is. Events wait in
`pending` until the watermark (latest event time seen minus the allowed lateness) passes
them, then are released in (time, event_id) order. So any arrival order within the
lateness bound yields exactly the batch result. An event behind the watermark is *late*:
it joins the visitor's held session if it falls within it (or a timeout before it),
otherwise it starts a session of its own; late events are counted, never dropped.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from pipeline.config import Settings
from pipeline.events.schema import canonical_arrow_schema
from pipeline.events.timestamps import EPOCH
from pipeline.privacy.hashing import keyed_hash

MICROS_PER_MINUTE = 60_000_000
_SESSION_ID_KEY = b"sessionflow/session-id/v1"
# 1: pickled classes (read only by pipeline.lake.state); 2: no open client sessions.
SNAPSHOT_VERSION = 3
_READABLE_SNAPSHOTS = (2, 3)
_FOREVER = 2**63 - 1


@dataclass(frozen=True)
class SessionRules:
    timeout_micros: int = 30 * MICROS_PER_MINUTE
    lateness_micros: int = 10 * MICROS_PER_MINUTE
    timezone: str = "UTC"
    split_at_midnight: bool = False
    split_on_campaign_change: bool = False
    # How long an idle visitor's state is held after its session timed out, so that late
    # events can still join it. Bounds memory.
    retention_micros: int = 60 * MICROS_PER_MINUTE

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionRules:
        rules = settings.sessionization
        return cls(
            timeout_micros=rules.timeout_minutes * MICROS_PER_MINUTE,
            lateness_micros=rules.allowed_lateness_minutes * MICROS_PER_MINUTE,
            timezone=settings.timezone,
            split_at_midnight=rules.split_at_midnight,
            split_on_campaign_change=rules.split_on_campaign_change,
            retention_micros=rules.state_retention_minutes * MICROS_PER_MINUTE,
        )


@dataclass
class OpenSession:
    """What is held per (site, visitor) for inactivity-based sessions."""

    session_id: str
    first_ts: int
    last_ts: int
    campaign: tuple[str | None, ...] | None
    local_day: int


@dataclass
class OpenClientSession:
    """The visitor's latest client session, which events without a session id may join."""

    client_session_id: str
    first_ts: int
    last_ts: int


def session_id_for_first_event(site: str, visitor: str, ts: int, event_id: str) -> str:
    return keyed_hash(_SESSION_ID_KEY, site, visitor, str(ts), event_id)


def session_id_for_client_session(site: str, visitor: str, client_session_id: str) -> str:
    return keyed_hash(_SESSION_ID_KEY, site, visitor, "client", client_session_id)


class Sessionizer:
    def __init__(self, rules: SessionRules) -> None:
        self.rules = rules
        self._zone = ZoneInfo(rules.timezone)
        self._pending: list[pa.Table] = []
        self._open: dict[tuple[str, str], OpenSession] = {}
        self._open_client: dict[tuple[str, str], OpenClientSession] = {}
        self._max_ts: int | None = None
        self._released_below = -_FOREVER  # every event below this has been released
        self.late_events = 0

    # -- the interface --------------------------------------------------------------------

    def add(self, events: pa.Table) -> None:
        """Accept canonical events (event_ts as timestamp[us]) in arrival order. An event
        below what an earlier release() already passed is counted as late."""
        if events.num_rows == 0:
            return
        self._pending.append(events)
        stamps = events["event_ts"].cast(pa.int64())
        self.late_events += pc.sum(pc.less(stamps, self._released_below)).as_py() or 0
        batch_max = pc.max(stamps).as_py()
        self._max_ts = batch_max if self._max_ts is None else max(self._max_ts, batch_max)

    @property
    def watermark(self) -> int:
        if self._max_ts is None:
            return -_FOREVER
        return self._max_ts - self.rules.lateness_micros

    @property
    def pending_events(self) -> int:
        return sum(table.num_rows for table in self._pending)

    def release(self, *, final: bool = False, cutoff_floor: int | None = None) -> pa.Table | None:
        """Events below the watermark (all of them when `final`), in (site, visitor, time,
        event_id) order, with `session_id` assigned and the client's id kept as
        `client_session_id`. None when nothing is ready.

        `cutoff_floor` lets a caller move the watermark forward without new events, e.g.
        to the wall clock minus the lateness when a stream has gone quiet."""
        cutoff = _FOREVER if final else max(self.watermark, cutoff_floor or -_FOREVER)
        # The frontier moves even when nothing is ready: what arrives below it is late.
        frontier = (
            (self._max_ts if self._max_ts is not None else -_FOREVER) + 1 if final else cutoff
        )
        self._released_below = max(self._released_below, frontier)
        if not self._pending:
            return None
        pending = pa.concat_tables(self._pending)
        ready_mask = pc.less(pending["event_ts"].cast(pa.int64()), cutoff)
        ready = pending.filter(ready_mask)
        waiting = pending.filter(pc.invert(ready_mask))
        self._pending = [waiting] if waiting.num_rows else []
        if ready.num_rows == 0:
            return None
        assigned = self._assign(ready)
        self._evict()
        return assigned

    def snapshot(self) -> bytes:
        """The whole state as versioned JSON (no pickled classes, so code can move)."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes) -> Sessionizer:
        return cls.from_json(json.loads(data))

    def to_json(self) -> dict[str, Any]:
        pending = pa.concat_tables(self._pending) if self._pending else None
        return {
            "version": SNAPSHOT_VERSION,
            "rules": dataclasses.asdict(self.rules),
            "pending": None if pending is None else _ipc_text(pending),
            "open": [
                [site, visitor, held.session_id, held.first_ts, held.last_ts,
                 None if held.campaign is None else list(held.campaign), held.local_day]
                for (site, visitor), held in self._open.items()
            ],
            "open_client": [
                [site, visitor, held.client_session_id, held.first_ts, held.last_ts]
                for (site, visitor), held in self._open_client.items()
            ],
            "max_ts": self._max_ts,
            "released_below": self._released_below,
            "late_events": self.late_events,
        }  # fmt: skip

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Sessionizer:
        if state.get("version") not in _READABLE_SNAPSHOTS:
            raise ValueError(
                f"sessionizer snapshot version {state.get('version')} is not one of "
                f"{_READABLE_SNAPSHOTS}"
            )
        pending = state["pending"]
        return cls.from_parts(
            SessionRules(**state["rules"]),
            None if pending is None else _table_from_ipc_text(pending),
            {
                (site, visitor): OpenSession(
                    session_id, first, last, None if campaign is None else tuple(campaign), day
                )
                for site, visitor, session_id, first, last, campaign, day in state["open"]
            },
            max_ts=state["max_ts"],
            released_below=state["released_below"],
            late_events=state["late_events"],
            open_client_sessions={
                (site, visitor): OpenClientSession(client_session_id, first, last)
                for site, visitor, client_session_id, first, last in state.get("open_client", [])
            },
        )

    @classmethod
    def from_parts(
        cls,
        rules: SessionRules,
        pending: pa.Table | None,
        open_sessions: dict[tuple[str, str], OpenSession],
        *,
        max_ts: int | None,
        released_below: int,
        late_events: int,
        open_client_sessions: dict[tuple[str, str], OpenClientSession] | None = None,
    ) -> Sessionizer:
        sessionizer = cls(rules)
        sessionizer._pending = [_with_current_columns(pending)] if pending is not None else []
        sessionizer._open = open_sessions
        sessionizer._open_client = open_client_sessions or {}
        sessionizer._max_ts = max_ts
        sessionizer._released_below = released_below
        sessionizer.late_events = late_events
        return sessionizer

    # -- the core -------------------------------------------------------------------------

    def _assign(self, ready: pa.Table) -> pa.Table:
        ordered = ready.sort_by(
            [("site_id", "ascending"), ("visitor_id", "ascending"),
             ("event_ts", "ascending"), ("event_id", "ascending")]
        )  # fmt: skip
        sites = ordered["site_id"].to_pylist()
        visitors = ordered["visitor_id"].to_pylist()
        stamps = ordered["event_ts"].cast(pa.int64()).to_pylist()
        event_ids = ordered["event_id"].to_pylist()
        client_ids = ordered["session_id"].to_pylist()
        campaigns = self._campaigns(ordered)
        session_ids = []
        for row, ts in enumerate(stamps):
            site, visitor = sites[row], visitors[row]
            client_id = client_ids[row] or self._joinable_client_session(site, visitor, ts)
            if client_id is not None:
                self._hold_client_session(site, visitor, client_id, ts)
                session_ids.append(session_id_for_client_session(site, visitor, client_id))
            else:
                session_ids.append(
                    self._inactivity_session(site, visitor, ts, event_ids[row], campaigns[row])
                )
        client_column = ordered.schema.get_field_index("session_id")
        return ordered.set_column(
            client_column, "client_session_id", ordered["session_id"]
        ).append_column("session_id", pa.array(session_ids, pa.string()))

    def _joinable_client_session(self, site: str, visitor: str, ts: int) -> str | None:
        """The visitor's client session an event without a session id joins: one whose
        events span it, or whose last event is at most the timeout before it."""
        held = self._open_client.get((site, visitor))
        if held is None or not held.first_ts <= ts <= held.last_ts + self.rules.timeout_micros:
            return None
        return held.client_session_id

    def _hold_client_session(self, site: str, visitor: str, client_id: str, ts: int) -> None:
        key = (site, visitor)
        held = self._open_client.get(key)
        if held is not None and held.client_session_id == client_id:
            held.first_ts = min(held.first_ts, ts)
            held.last_ts = max(held.last_ts, ts)
        elif held is None or ts >= held.last_ts:  # a later session replaces the held one
            self._open_client[key] = OpenClientSession(client_id, ts, ts)

    def _inactivity_session(
        self,
        site: str,
        visitor: str,
        ts: int,
        event_id: str,
        campaign: tuple[str | None, ...] | None,
    ) -> str:
        key = (site, visitor)
        held = self._open.get(key)
        day = self._local_day(ts) if self.rules.split_at_midnight else 0
        if held is not None and ts < held.last_ts:
            # Late, behind the session we hold: join it if it fits, else stand alone.
            fits = ts >= held.first_ts - self.rules.timeout_micros and not self._splits(
                held, campaign, day
            )
            return (
                held.session_id if fits else session_id_for_first_event(site, visitor, ts, event_id)
            )
        if held is not None and not self._starts_new_session(held, ts, campaign, day):
            held.last_ts = ts
            return held.session_id
        session_id = session_id_for_first_event(site, visitor, ts, event_id)
        self._open[key] = OpenSession(session_id, ts, ts, campaign, day)
        return session_id

    def _starts_new_session(
        self, held: OpenSession, ts: int, campaign: tuple[str | None, ...] | None, day: int
    ) -> bool:
        return ts - held.last_ts > self.rules.timeout_micros or self._splits(held, campaign, day)

    def _splits(self, held: OpenSession, campaign: tuple[str | None, ...] | None, day: int) -> bool:
        """The optional rules: another local day, or another campaign, is another session."""
        if self.rules.split_at_midnight and day != held.local_day:
            return True
        return (
            self.rules.split_on_campaign_change
            and campaign is not None
            and campaign != held.campaign
        )

    def _campaigns(self, table: pa.Table) -> list[tuple[str | None, ...] | None]:
        if not self.rules.split_on_campaign_change:
            return [None] * table.num_rows
        columns = [table[name].to_pylist() for name in ("utm_source", "utm_medium", "utm_campaign")]
        return [
            None if all(value is None for value in values) else tuple(values)
            for values in zip(*columns, strict=True)
        ]

    def _local_day(self, ts: int) -> int:
        return (EPOCH + timedelta(microseconds=ts)).astimezone(self._zone).toordinal()

    def _evict(self) -> None:
        horizon = self._released_below - self.rules.timeout_micros - self.rules.retention_micros
        stale = [key for key, held in self._open.items() if held.last_ts < horizon]
        for key in stale:
            del self._open[key]
        stale = [key for key, client in self._open_client.items() if client.last_ts < horizon]
        for key in stale:
            del self._open_client[key]


def _with_current_columns(pending: pa.Table) -> pa.Table:
    """Events a snapshot held, in today's canonical columns: a field added to the schema
    since (e.g. visitor_scope) is null for them."""
    schema = canonical_arrow_schema()
    if pending.schema.equals(schema):
        return pending
    columns = [
        pending[field.name] if field.name in pending.column_names
        else pa.nulls(pending.num_rows, field.type)
        for field in schema
    ]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=schema)


def _ipc_text(table: pa.Table) -> str:
    """An Arrow table as base64 of its IPC stream: exact types, inside a JSON document."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _table_from_ipc_text(text: str) -> pa.Table:
    with pa.ipc.open_stream(base64.b64decode(text)) as reader:
        return reader.read_all()
