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

How it runs (for speed): a release sorts its events once, on integer ranks, and applies
the inactivity rules to every visitor's run with array operations; only a session start
is hashed. The open sessions are numpy columns (pipeline.sessions.columnar), about 100
bytes a visitor. Visitors whose client session ids are in play take a row-by-row path
that is the rules as first written; tests hold both paths to identical output.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from pipeline.config import Settings
from pipeline.events.schema import canonical_arrow_schema
from pipeline.privacy.hashing import ID_HEX_CHARS, keyed_hash
from pipeline.sessions.columnar import (
    NO_CAMPAIGN,
    Campaign,
    Ints,
    OpenSession,
    OpenSessionStore,
    _Columns,
    bytes_to_arrow,
    campaign_codes,
    keyed_hashes,
    local_days,
)

__all__ = [
    "MICROS_PER_MINUTE", "OpenClientSession", "OpenSession", "SessionRules", "Sessionizer",
    "session_id_for_client_session", "session_id_for_first_event",
]  # fmt: skip

MICROS_PER_MINUTE = 60_000_000
_SESSION_ID_KEY = b"sessionflow/session-id/v1"
# 1: pickled classes (read only by pipeline.lake.state); 2: no open client sessions.
SNAPSHOT_VERSION = 3
_READABLE_SNAPSHOTS = (2, 3)
_FOREVER = 2**63 - 1
_CAMPAIGN_FIELDS = ("utm_source", "utm_medium", "utm_campaign")


@dataclass(frozen=True)
class SessionRules:
    timeout_micros: int = 30 * MICROS_PER_MINUTE
    lateness_micros: int = 10 * MICROS_PER_MINUTE
    timezone: str = "UTC"
    split_at_midnight: bool = False
    # (site, zone) for each site whose days are in another zone than `timezone`
    # ([site."<id>"] timezone): split_at_midnight splits at the site's own midnight.
    site_timezones: tuple[tuple[str, str], ...] = ()
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
            site_timezones=tuple(
                (site, settings.site_timezone(site))
                for site in settings.sites
                if rules.split_at_midnight and settings.site_timezone(site) != settings.timezone
            ),
            split_on_campaign_change=rules.split_on_campaign_change,
            retention_micros=rules.state_retention_minutes * MICROS_PER_MINUTE,
        )


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
        self._site_zones = {site: ZoneInfo(zone) for site, zone in rules.site_timezones}
        self._pending: list[pa.Table] = []
        self._open = OpenSessionStore()  # columnar; a Mapping of OpenSession
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
        ready_count = pc.sum(ready_mask).as_py() or 0
        if ready_count == 0:
            self._pending = [pending]
            return None
        if ready_count == pending.num_rows:  # e.g. a final release: no copy
            ready, self._pending = pending, []
        else:
            ready = pending.filter(ready_mask)
            self._pending = [pending.filter(pc.invert(ready_mask))]
        del pending
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
                for site, visitor, held in self._open.rows()
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
        rules = state["rules"]
        # JSON has lists for the pairs; a snapshot older than site zones has none.
        zones = tuple((site, zone) for site, zone in rules.pop("site_timezones", ()))
        return cls.from_parts(
            SessionRules(**rules, site_timezones=zones),
            None if pending is None else _table_from_ipc_text(pending),
            [
                (
                    site,
                    visitor,
                    OpenSession(
                        session_id, first, last, None if campaign is None else tuple(campaign), day
                    ),
                )
                for site, visitor, session_id, first, last, campaign, day in state["open"]
            ],
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
        open_sessions: Mapping[tuple[str, str], OpenSession] | list[tuple[str, str, OpenSession]],
        *,
        max_ts: int | None,
        released_below: int,
        late_events: int,
        open_client_sessions: dict[tuple[str, str], OpenClientSession] | None = None,
    ) -> Sessionizer:
        sessionizer = cls(rules)
        sessionizer._pending = [_with_current_columns(pending)] if pending is not None else []
        if isinstance(open_sessions, Mapping):
            open_sessions = [
                (site, visitor, held) for (site, visitor), held in open_sessions.items()
            ]
        sessionizer._open.put_many(open_sessions)
        sessionizer._open_client = open_client_sessions or {}
        sessionizer._max_ts = max_ts
        sessionizer._released_below = released_below
        sessionizer.late_events = late_events
        return sessionizer

    # -- the core -------------------------------------------------------------------------

    def _assign(self, ready: pa.Table) -> pa.Table:
        """Sort once, then assign ids with array operations over every visitor's run of
        events. Visitors with a client session id in play go row by row (same rules)."""
        store = self._open
        rows = _SortedRows.of(ready, store)
        with ThreadPoolExecutor(max_workers=1) as background:
            # Gathering every column into the output order releases the GIL: it runs on
            # another core while this thread assigns (hashing is bound to the GIL).
            gathering = background.submit(_take, ready, rows.order)
            session_ids = self._session_ids(ready, rows)
            ordered = gathering.result()
        client_column = ordered.schema.get_field_index("session_id")
        return ordered.set_column(
            client_column, "client_session_id", ordered["session_id"]
        ).append_column("session_id", session_ids)

    def _session_ids(self, ready: pa.Table, rows: _SortedRows) -> pa.Array:
        """Each event's session id, in sorted order; updates the held state."""
        store, count = self._open, len(rows.order)
        days = (
            self._local_days(ready, rows) if self.rules.split_at_midnight
            else np.zeros(count, np.int32)
        )  # fmt: skip
        campaigns = (
            campaign_codes(store, ready, _CAMPAIGN_FIELDS)[rows.order]
            if self.rules.split_on_campaign_change
            else np.full(count, NO_CAMPAIGN, np.int32)
        )
        keys = store.encode_keys(rows.group_sites, rows.group_visitors)
        slots, found = store.find(keys)
        fast = ~self._row_by_row_groups(rows, ready, keys)[rows.group]
        held_ids = bytes_to_arrow(_gather(store.session_ids, slots, found, b""))
        source = np.zeros(count, np.int64)  # each row's index into the pool of ids
        fast_ids, fast_writes = self._vectorised(
            rows, ready, days, campaigns, keys, slots, found, fast, source
        )
        pool = [held_ids, bytes_to_arrow(fast_ids)]
        writes = [fast_writes]
        if not fast.all():
            slow_rows = np.flatnonzero(~fast)
            source[slow_rows] = len(held_ids) + len(fast_ids) + np.arange(len(slow_rows))
            slow_ids, slow_writes = self._row_by_row(rows, ready, slow_rows, days, campaigns)
            pool.append(pa.array(slow_ids, pa.string()))
            writes.append(slow_writes)
        # Slots stay valid until the first insert: update everything, then insert.
        for write in writes:
            store.update(write.slots, write.updated)
        for write in writes:
            store.insert(write.new_keys, write.inserted)
        return pa.concat_arrays(pool).take(pa.array(source))

    def _row_by_row_groups(
        self, rows: _SortedRows, ready: pa.Table, keys: npt.NDArray[np.bytes_]
    ) -> npt.NDArray[np.bool_]:
        """Visitors that take the row-by-row path: some event carries a client session id,
        or the visitor holds an open client session that events may join."""
        has_client = ready["session_id"].is_valid().to_numpy(zero_copy_only=False)[rows.order]
        slow: npt.NDArray[np.bool_] = np.logical_or.reduceat(has_client, rows.group_starts)
        if self._open_client:
            held = np.array([self._open.key_of(*key) for key in self._open_client])
            width = max(held.dtype.itemsize, keys.dtype.itemsize)
            slow |= np.isin(keys.astype(f"S{width}"), held.astype(f"S{width}"))
        return slow

    def _vectorised(
        self,
        rows: _SortedRows,
        ready: pa.Table,
        days: npt.NDArray[np.int32],
        campaigns: npt.NDArray[np.int32],
        keys: npt.NDArray[np.bytes_],
        slots: Ints,
        found: npt.NDArray[np.bool_],
        fast: npt.NDArray[np.bool_],
        source: Ints,
    ) -> tuple[npt.NDArray[np.bytes_], _Writes]:
        """The inactivity rules for the `fast` rows, as array operations; fills `source`.

        Within a visitor's sorted run, the events behind its held session's last event
        come first (they never change what is held): each joins the held session if it
        fits, else stands alone. The rest start a session where the gap to the previous
        event (the held last event, for the first) exceeds the timeout, the local day
        changes, or, with the campaign rule, a campaign differs from the session's, which
        is the latest campaign seen since the session started (its first event's)."""
        store, timeout = self._open, self.rules.timeout_micros
        midnight = self.rules.split_at_midnight
        group, stamps, count = rows.group, rows.stamps, len(rows.order)
        index = np.arange(count)
        found_row = found[group]
        held_first = _gather(store.first, slots, found, 0)[group]
        held_last = _gather(store.last, slots, found, 0)[group]
        held_campaign = _gather(store.campaign, slots, found, NO_CAMPAIGN)[group]
        held_day = _gather(store.day, slots, found, 0)[group]

        late = fast & found_row & (stamps < held_last)
        on_time = fast & ~late
        first_on_time = on_time & (rows.is_group_start | np.r_[False, late[:-1]])
        previous_ts = np.r_[stamps[:1], stamps[:-1]]
        previous_day = np.r_[days[:1], days[:-1]]
        breaks_held = ~found_row | (stamps - held_last > timeout)
        breaks_previous = stamps - previous_ts > timeout
        if midnight:
            breaks_held |= days != held_day
            breaks_previous |= days != previous_day
        new = on_time & np.where(first_on_time, breaks_held, breaks_previous)
        # For an on-time row: where its visitor's on-time rows begin.
        region = np.maximum.accumulate(np.where(first_on_time, index, -1))
        late_fits = stamps >= held_first - timeout
        if midnight:
            late_fits &= days == held_day
        if self.rules.split_on_campaign_change:
            named = campaigns != NO_CAMPAIGN
            setter = on_time & (new | named)  # rows after which the session's campaign is theirs
            before = np.r_[-1, np.maximum.accumulate(np.where(setter, index, -1))[:-1]]
            current = np.where(before >= region, campaigns[before], held_campaign)
            new |= on_time & named & (campaigns != current)
            late_fits &= ~(named & (campaigns != held_campaign))
        hashed = new | (late & ~late_fits)
        hash_rows = np.flatnonzero(hashed)
        picked = pa.array(rows.order[hash_rows])
        ids = keyed_hashes(
            _SESSION_ID_KEY,
            [ready["site_id"].take(picked), ready["visitor_id"].take(picked),
             pa.array(stamps[hash_rows]).cast(pa.string()), ready["event_id"].take(picked)],
            ID_HEX_CHARS,
        )  # fmt: skip
        hash_index = np.cumsum(hashed) - 1
        offset = len(found)  # the held ids come first in the pool
        last_new = np.maximum.accumulate(np.where(new, index, -1))
        started = on_time & (last_new >= region)
        source[fast] = group[fast]  # the held session, unless...
        source[started] = offset + hash_index[last_new[started]]
        own = late & ~late_fits
        source[own] = offset + hash_index[own]

        # What each fast visitor with on-time rows holds afterwards.
        ends = np.r_[rows.group_starts[1:], count] - 1
        changed = on_time[ends]
        last_rows, first_rows = ends[changed], last_new[ends[changed]]
        fresh = started[last_rows]
        safe_first = np.where(fresh, first_rows, last_rows)
        values = _Columns(
            np.where(fresh, ids[hash_index[safe_first]] if len(ids) else b"",
                     _gather(store.session_ids, slots, found, b"")[changed]),
            np.where(fresh, stamps[safe_first], held_first[last_rows]),
            stamps[last_rows],
            np.where(fresh, campaigns[safe_first], held_campaign[last_rows]).astype(np.int32),
            np.where(fresh, days[safe_first], held_day[last_rows]).astype(np.int32),
        )  # fmt: skip
        is_held = found[changed]
        return ids, _Writes(
            slots[changed][is_held], values.select(is_held), keys[changed][~is_held],
            values.select(~is_held),
        )  # fmt: skip

    def _local_days(self, ready: pa.Table, rows: _SortedRows) -> npt.NDArray[np.int32]:
        """Each sorted event's local date in its site's time zone."""
        days = local_days(rows.stamps, self._zone)
        if not self._site_zones:
            return days
        sites = ready["site_id"].take(pa.array(rows.order)).to_numpy(zero_copy_only=False)
        for site, zone in self._site_zones.items():
            own = sites == site
            if own.any():
                days[own] = local_days(rows.stamps[own], zone)
        return days

    def _row_by_row(
        self,
        rows: _SortedRows,
        ready: pa.Table,
        slow_rows: Ints,
        days: npt.NDArray[np.int32],
        campaigns: npt.NDArray[np.int32],
    ) -> tuple[list[str], _Writes]:
        """The rules event by event, for visitors whose client sessions interact."""
        store = self._open
        take = pa.array(rows.order[slow_rows])
        sites = ready["site_id"].take(take).to_pylist()
        visitors = ready["visitor_id"].take(take).to_pylist()
        event_ids = ready["event_id"].take(take).to_pylist()
        client_ids = ready["session_id"].take(take).to_pylist()
        stamps, row_days = rows.stamps[slow_rows].tolist(), days[slow_rows].tolist()
        row_campaigns = [store.campaign_of(code) for code in campaigns[slow_rows].tolist()]
        held: dict[tuple[str, str], OpenSession] = {}
        for key in set(zip(sites, visitors, strict=True)):
            if key in store:
                held[key] = store[key]
        session_ids = []
        for row, ts in enumerate(stamps):
            site, visitor = sites[row], visitors[row]
            client_id = client_ids[row] or self._joinable_client_session(site, visitor, ts)
            if client_id is not None:
                self._hold_client_session(site, visitor, client_id, ts)
                session_ids.append(session_id_for_client_session(site, visitor, client_id))
            else:
                session_ids.append(
                    self._inactivity_session(
                        held, site, visitor, ts, event_ids[row], row_campaigns[row], row_days[row]
                    )
                )
        entries = [(site, visitor, session) for (site, visitor), session in held.items()]
        keys = np.array([store.key_of(site, visitor) for site, visitor, _ in entries] or [b""])
        values = store.columns_of([session for _, _, session in entries])
        slots, found = store.find(keys[: len(entries)])
        return session_ids, _Writes(
            slots[found], values.select(found), keys[: len(entries)][~found], values.select(~found)
        )

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
        open_sessions: dict[tuple[str, str], OpenSession],
        site: str,
        visitor: str,
        ts: int,
        event_id: str,
        campaign: Campaign,
        day: int,
    ) -> str:
        key = (site, visitor)
        held = open_sessions.get(key)
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
        open_sessions[key] = OpenSession(session_id, ts, ts, campaign, day)
        return session_id

    def _starts_new_session(self, held: OpenSession, ts: int, campaign: Campaign, day: int) -> bool:
        return ts - held.last_ts > self.rules.timeout_micros or self._splits(held, campaign, day)

    def _splits(self, held: OpenSession, campaign: Campaign, day: int) -> bool:
        """The optional rules: another local day, or another campaign, is another session."""
        if self.rules.split_at_midnight and day != held.local_day:
            return True
        return (
            self.rules.split_on_campaign_change
            and campaign is not None
            and campaign != held.campaign
        )

    def _evict(self) -> None:
        horizon = self._released_below - self.rules.timeout_micros - self.rules.retention_micros
        keep = self._open.last >= horizon
        if not keep.all():
            self._open.keep(keep)
        self._open.forget_unused_campaigns()
        stale = [key for key, client in self._open_client.items() if client.last_ts < horizon]
        for key in stale:
            del self._open_client[key]


@dataclass
class _Writes:
    """Store changes from one path of a release: updates by slot, then inserts."""

    slots: Ints
    updated: _Columns
    new_keys: npt.NDArray[np.bytes_]
    inserted: _Columns


@dataclass
class _SortedRows:
    """A release's events in (site, visitor, time, event_id) order, and its visitors."""

    order: Ints  # sorted position -> row of the ready table
    stamps: Ints  # event_ts in sorted order
    group: Ints  # sorted position -> visitor number
    is_group_start: npt.NDArray[np.bool_]
    group_starts: Ints  # visitor number -> its first sorted position
    group_sites: Ints  # visitor number -> the store's site code
    group_visitors: pa.Array  # visitor number -> visitor_id

    @classmethod
    def of(cls, ready: pa.Table, store: OpenSessionStore) -> _SortedRows:
        # Sort on integers: the ranks of site and visitor among the batch's distinct values
        # (string order, as Arrow sorts), then time; ties broken by event_id afterwards.
        sites, site_rows = _dictionary(ready["site_id"])
        visitors, visitor_rows = _dictionary(ready["visitor_id"])
        visitor_key = _ranks(sites)[site_rows] * len(visitors) + _ranks(visitors)[visitor_rows]
        stamps = ready["event_ts"].cast(pa.int64()).to_numpy()
        order = _break_ties(_sort_order(visitor_key, stamps), visitor_key, stamps, ready)
        sorted_keys = visitor_key[order]
        is_group_start = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
        group_starts = np.flatnonzero(is_group_start)
        first_rows = order[group_starts]
        site_codes = np.array([store.site_code(site) for site in sites.to_pylist()], np.int64)
        return cls(
            order, stamps[order], np.cumsum(is_group_start) - 1, is_group_start, group_starts,
            site_codes[site_rows[first_rows]], visitors.take(pa.array(visitor_rows[first_rows])),
        )  # fmt: skip


def _dictionary(column: pa.ChunkedArray) -> tuple[pa.Array, Ints]:
    encoded = pc.dictionary_encode(column.combine_chunks())
    return encoded.dictionary, encoded.indices.to_numpy().astype(np.int64)


def _ranks(values: pa.Array) -> Ints:
    ranks = np.empty(len(values), np.int64)
    ranks[pc.sort_indices(values).to_numpy()] = np.arange(len(values))
    return ranks


def _sort_order(visitor_key: Ints, stamps: Ints) -> Ints:
    """Positions in (visitor_key, stamp) order; one argsort of a packed key when it fits."""
    low = int(stamps.min())
    stamp_bits = (int(stamps.max()) - low).bit_length()
    if stamp_bits + int(visitor_key.max()).bit_length() <= 62:
        return np.argsort((visitor_key << stamp_bits) | (stamps - low)).astype(np.int64)
    by_time = np.argsort(stamps, kind="stable")
    return by_time[np.argsort(visitor_key[by_time], kind="stable")].astype(np.int64)


def _break_ties(order: Ints, visitor_key: Ints, stamps: Ints, ready: pa.Table) -> Ints:
    """Events of one visitor at the same instant: by event_id, then arrival (a stable sort,
    as Arrow's sort_by was)."""
    keys, times = visitor_key[order], stamps[order]
    tied = (keys[1:] == keys[:-1]) & (times[1:] == times[:-1])
    if not tied.any():
        return order
    in_run = np.r_[tied, False] | np.r_[False, tied]
    positions = np.flatnonzero(in_run)
    event_ids = ready["event_id"].take(pa.array(order[positions])).to_pylist()
    starts_run = np.r_[True, ~tied[positions[1:] - 1]].tolist()
    order = order.copy()
    run: list[int] = []
    for number, position in enumerate([*positions.tolist(), -1]):
        if run and (position == -1 or starts_run[number]):
            ranked = sorted(run, key=lambda k: (event_ids[k], int(order[positions[k]])))
            order[positions[run]] = order[positions[ranked]]
            run = []
        if position != -1:
            run.append(number)
    return order


def _take(table: pa.Table, order: Ints) -> pa.Table:
    """table.take(order); a column that is all null stays so without a gather."""
    indices = pa.array(order)
    columns = [
        pa.nulls(len(order), column.type) if column.null_count == len(column)
        else column.take(indices)
        for column in table.columns
    ]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=table.schema)


def _gather(column: npt.NDArray[Any], slots: Ints, found: npt.NDArray[np.bool_], fill: Any) -> Any:
    """column[slot] where found, else `fill` (also when the store is empty)."""
    if not len(column):
        return np.full(len(slots), fill, dtype=column.dtype)
    return np.where(found, column[slots], fill).astype(column.dtype)


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
