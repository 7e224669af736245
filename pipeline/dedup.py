"""Drops repeated event_ids, first arrival wins (functional core, like the sessionizer).

Memory is bounded by forgetting ids whose events are older than `window_micros` behind
the newest event seen. A duplicate arriving later than that is not caught here; the
warehouse's staging model de-duplicates by event_id once more.
"""

from __future__ import annotations

import pickle

import pyarrow as pa
import pyarrow.compute as pc

_SNAPSHOT_VERSION = 1


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
        state = (_SNAPSHOT_VERSION, self.window_micros, self._seen, self._newest, self.duplicates)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, data: bytes) -> Deduplicator:
        version, window, seen, newest, duplicates = pickle.loads(data)
        if version != _SNAPSHOT_VERSION:
            raise ValueError(f"dedup snapshot version {version} is not {_SNAPSHOT_VERSION}")
        dedup = cls(window)
        dedup._seen, dedup._newest, dedup.duplicates = seen, newest, duplicates
        return dedup
