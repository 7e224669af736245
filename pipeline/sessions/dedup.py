"""Drops repeated events, first arrival wins (functional core, like the sessionizer).

An event id is unique per site: two sites may both send event "1", and both land.

An anonymous event (`trust`, pipeline.events.site_rules) never drops an authenticated
one: an authenticated event is a repeat only of an authenticated event, an anonymous one
of either. So when an anonymous event took an id first, the authenticated event with that
id lands too, and the warehouse's staging model keeps the authenticated one. An event
without `trust` (written before the field existed) is authenticated.

Memory is bounded by forgetting ids whose events are older than `window_micros` behind
the newest event seen. A duplicate arriving later than that is not caught here; the
warehouse's staging model de-duplicates by (site_id, event_id) once more. So does it for
ids remembered by a version 2 snapshot, which kept event ids without their site: they
are matched on the id alone until they age out.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.site_rules import ANONYMOUS

# 1: pickled (read only by pipeline.lake.state); 2: ids without their site; 3: without
# their trust (read as authenticated, the rule for a missing trust).
SNAPSHOT_VERSION = 4
_SITE_SEPARATOR = "\x1f"  # a control character: no site or event id holds one


class Deduplicator:
    def __init__(self, window_micros: int) -> None:
        self.window_micros = window_micros
        self._seen: dict[str, int] = {}  # site_id \x1f event_id -> event_ts (authenticated)
        self._seen_anonymous: dict[str, int] = {}  # the same, of ids seen only anonymously
        self._unsited: dict[str, int] = {}  # event_id -> event_ts, from a version 2 snapshot
        self._newest = 0
        self._sweep_at = 2_000  # sweep when the map reaches this size (amortised)
        self.duplicates = 0

    def first_arrivals(self, events: pa.Table) -> pa.Table:
        """The events whose (site_id, event_id) was not seen before (in this table or
        earlier) from an event at least as trusted."""
        if events.num_rows == 0:
            return events
        keep = []
        seen, seen_anonymous, unsited = self._seen, self._seen_anonymous, self._unsited
        stamps = events["event_ts"].cast(pa.int64()).to_pylist()
        sites = events["site_id"].to_pylist()
        anonymous = pc.fill_null(pc.equal(events["trust"], ANONYMOUS), False).to_pylist()
        rows = zip(sites, events["event_id"].to_pylist(), stamps, anonymous, strict=True)
        for site, event_id, ts, is_anonymous in rows:
            key = f"{site}{_SITE_SEPARATOR}{event_id}"
            fresh = key not in seen and event_id not in unsited
            if fresh and is_anonymous:
                fresh = key not in seen_anonymous
                if fresh:
                    seen_anonymous[key] = ts
            elif fresh:
                seen[key] = ts
            keep.append(fresh)
        dropped = keep.count(False)
        self.duplicates += dropped
        self._newest = max(self._newest, pc.max(events["event_ts"].cast(pa.int64())).as_py())
        self._forget_old()
        return events if dropped == 0 else events.filter(pa.array(keep))

    def _forget_old(self) -> None:
        if len(self._seen) + len(self._seen_anonymous) < self._sweep_at:
            return
        horizon = self._newest - self.window_micros
        self._seen = {key: ts for key, ts in self._seen.items() if ts >= horizon}
        self._seen_anonymous = {
            key: ts for key, ts in self._seen_anonymous.items() if ts >= horizon
        }
        self._unsited = {eid: ts for eid, ts in self._unsited.items() if ts >= horizon}
        self._sweep_at = max(2_000, 2 * (len(self._seen) + len(self._seen_anonymous)))

    def snapshot(self) -> bytes:
        """The whole state as versioned JSON (no pickled classes, so code can move)."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def restore(cls, data: bytes) -> Deduplicator:
        return cls.from_json(json.loads(data))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "window_micros": self.window_micros,
            "seen": self._seen,
            "seen_anonymous": self._seen_anonymous,
            "unsited": self._unsited,
            "newest": self._newest,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Deduplicator:
        version = state.get("version")
        if version not in (2, 3, SNAPSHOT_VERSION):
            raise ValueError(f"dedup snapshot version {version} is not 2 to {SNAPSHOT_VERSION}")
        seen, unsited = dict(state["seen"]), dict(state.get("unsited", {}))
        if version == 2:
            seen, unsited = {}, seen
        return cls.from_parts(
            state["window_micros"],
            seen,
            state["newest"],
            state["duplicates"],
            unsited=unsited,
            seen_anonymous=dict(state.get("seen_anonymous", {})),
        )

    @classmethod
    def from_parts(
        cls,
        window_micros: int,
        seen: dict[str, int],
        newest: int,
        duplicates: int,
        *,
        unsited: dict[str, int] | None = None,
        seen_anonymous: dict[str, int] | None = None,
    ) -> Deduplicator:
        dedup = cls(window_micros)
        dedup._seen, dedup._newest, dedup.duplicates = seen, newest, duplicates
        dedup._unsited = unsited or {}
        dedup._seen_anonymous = seen_anonymous or {}
        return dedup
