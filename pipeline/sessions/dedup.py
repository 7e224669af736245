"""Drops repeated event_ids, first arrival wins (functional core, like the sessionizer).

Memory is bounded by forgetting ids whose events are older than `window_micros` behind
the newest event seen. A duplicate arriving later than that is not caught here; the
warehouse's staging model de-duplicates by event_id once more.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

SNAPSHOT_VERSION = 2  # 1: pickled (read only by pipeline.lake.state)


class Deduplicator:
    def __init__(self, window_micros: int) -> None:
        self.window_micros = window_micros
        self._seen: dict[str, int] = {}  # event_id -> event_ts
        self._newest = 0
        self._sweep_at = 2_000  # sweep when the map reaches this size (amortised)
        self.duplicates = 0

    def first_arrivals(self, events: pa.Table) -> pa.Table:
        """The events whose event_id was not seen before (in this table or earlier)."""
        if events.num_rows == 0:
            return events
        keep = []
        seen = self._seen
        stamps = events["event_ts"].cast(pa.int64()).to_pylist()
        for event_id, ts in zip(events["event_id"].to_pylist(), stamps, strict=True):
            fresh = event_id not in seen
            if fresh:
                seen[event_id] = ts
            keep.append(fresh)
        dropped = keep.count(False)
        self.duplicates += dropped
        self._newest = max(self._newest, pc.max(events["event_ts"].cast(pa.int64())).as_py())
        self._forget_old()
        return events if dropped == 0 else events.filter(pa.array(keep))

    def _forget_old(self) -> None:
        if len(self._seen) < self._sweep_at:
            return
        horizon = self._newest - self.window_micros
        self._seen = {eid: ts for eid, ts in self._seen.items() if ts >= horizon}
        self._sweep_at = max(2_000, 2 * len(self._seen))

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
            "newest": self._newest,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Deduplicator:
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"dedup snapshot version {state.get('version')} is not {SNAPSHOT_VERSION}"
            )
        return cls.from_parts(
            state["window_micros"], dict(state["seen"]), state["newest"], state["duplicates"]
        )

    @classmethod
    def from_parts(
        cls, window_micros: int, seen: dict[str, int], newest: int, duplicates: int
    ) -> Deduplicator:
        dedup = cls(window_micros)
        dedup._seen, dedup._newest, dedup.duplicates = seen, newest, duplicates
        return dedup
