"""Row 2: the sessionizer core on in-memory Arrow events, against DuckDB window SQL, and
row 2b: the memory an open visitor's state costs.

Both sides get the same synthetic Arrow table: visitors with a few sessions each, page
views 5 s to 10 min apart inside a session and 31 min to 6 h apart between sessions,
rows shuffled. Memory is measured in a fresh subprocess (peak RSS is per process).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bench.common import REPEATS, Figure, command_for, median_rate, timed
from pipeline.events.schema import canonical_arrow_schema
from pipeline.sessions.sessionizer import OpenSession, Sessionizer, SessionRules

NEEDS_BROKER = False
BASE_MICROS = 1_794_787_200_000_000  # 2026-11-16 00:00 UTC
SECOND = 1_000_000
NEW_SESSION_SHARE = 0.12  # of a visitor's later events: about 5 events a session
MEMORY_CYCLE = 100_000  # events per add/release cycle: the consumer's cycle_max_events

# The same rule as SessionRules() (30 min), per (site, visitor), in time order.
DUCKDB_SESSIONS = """
SELECT *, SUM(CASE WHEN previous_ts IS NULL
                     OR event_ts - previous_ts > INTERVAL 30 MINUTE THEN 1 ELSE 0 END)
          OVER (PARTITION BY site_id, visitor_id ORDER BY event_ts, event_id
                ROWS UNBOUNDED PRECEDING) AS session_number
FROM (SELECT *, LAG(event_ts) OVER (PARTITION BY site_id, visitor_id
                                    ORDER BY event_ts, event_id) AS previous_ts
      FROM events)
"""


def synthetic_events(events: int, visitors: int, seed: int = 7) -> pa.Table:
    """Canonical events for `visitors` visitors on two sites, shuffled."""
    rng = np.random.default_rng(seed)
    visitor = np.sort(np.r_[np.arange(visitors), rng.integers(0, visitors, events - visitors)])
    first = np.r_[True, visitor[1:] != visitor[:-1]]
    starts_session = rng.random(events) < NEW_SESSION_SHARE
    gaps = np.where(
        starts_session,
        rng.integers(31 * 60, 6 * 3600, events),
        rng.integers(5, 600, events),
    ) * SECOND  # fmt: skip
    gaps[first] = rng.integers(0, 86_400, int(first.sum())) * SECOND  # the first event's time
    elapsed = np.cumsum(gaps)
    starts = np.flatnonzero(first)
    stamps = (
        BASE_MICROS
        + elapsed
        - np.repeat(elapsed[starts] - gaps[starts], np.diff(np.r_[starts, events]))
    )
    order = rng.permutation(events)
    visitor_ids = [f"{(v * 2654435761) % 2**64:016x}{v:016x}" for v in range(visitors)]
    columns = {
        "event_id": pa.array([f"e{i:09d}" for i in order.tolist()]),
        "event_name": pa.array(np.where(rng.random(events) < 0.05, "purchase", "page_view")),
        "event_ts": pa.array(stamps[order], pa.timestamp("us", tz="UTC")),
        "site_id": pa.array(np.where(visitor[order] % 3 == 0, "blog.example", "shop.example")),
        "visitor_id": pa.array([visitor_ids[v] for v in visitor[order].tolist()]),
        "page_url": pa.array([f"https://shop.example/p/{i % 300}" for i in order.tolist()]),
        "device_category": pa.array(np.where(visitor[order] % 2 == 0, "mobile", "desktop")),
    }
    schema = canonical_arrow_schema()
    return pa.Table.from_arrays(
        [columns.get(field.name, pa.nulls(events, field.type)) for field in schema], schema=schema
    )


def run(bootstrap: str, quick: bool) -> list[Figure]:
    events, visitors = (200_000, 20_000) if quick else (1_000_000, 100_000)
    table = synthetic_events(events, visitors)

    def project() -> int:
        sessionizer = Sessionizer(SessionRules())
        sessionizer.add(table)
        released = sessionizer.release(final=True)
        return 0 if released is None else released.num_rows

    def baseline() -> int:
        with duckdb.connect() as con:
            con.register("events", table)
            rows: int = con.execute(DUCKDB_SESSIONS).fetch_arrow_table().num_rows
            return rows

    # Alternate the two sides so that load from other work on the machine hits both.
    project_rates, baseline_rates = [], []
    for _ in range(REPEATS):
        project_rates.append(median_rate(lambda: timed(project), repeats=1))
        baseline_rates.append(median_rate(lambda: timed(baseline), repeats=1))
    sessions = _session_count(table)
    open_visitors = 200_000 if quick else 1_000_000
    memory = _memory_figures(open_visitors, with_dict=not quick)
    return [
        Figure(
            row="2",
            what=f"sessionizer core, {events // 1000:,}k in-memory events, "
            f"{visitors // 1000:,}k visitors",
            project=statistics.median(project_rates),
            baseline=statistics.median(baseline_rates),
            unit="events/s",
            baseline_what="DuckDB window SQL",
            target="≥ 2M events/s and ≥ 1.5",
            command=command_for("sessionizer"),
            note=(
                f"{sessions:,} sessions. Project: Sessionizer(SessionRules()).add(table) then "
                "release(final=True); the output gather on a second thread, the rest on one; "
                "output = every column in (site, visitor, "
                "time, event_id) order plus the hashed session_id. DuckDB: LAG + SUM OVER "
                "(PARTITION BY site_id, visitor_id ORDER BY event_ts, event_id), 30-min gap, "
                "every column plus a session number, fetched as Arrow, on all cores, no "
                "global ORDER BY and no id hashing. No events carry a client session_id "
                "(those visitors take the row-by-row path). Medians of "
                f"{REPEATS} alternating runs."
            ),
        ),
        Figure(
            row="2b",
            what=f"open visitor state, {open_visitors // 1000:,}k open visitors",
            project=memory["project"],
            baseline=memory["arrow"],
            unit="bytes/visitor",
            baseline_what="the same state as a plain Arrow table",
            target="≤ 300 bytes",
            command=command_for("sessionizer"),
            note=(
                "Peak RSS above a baseline taken after imports and after building the input "
                f"({open_visitors:,} visitors, one event each, fed in "
                f"{min(MEMORY_CYCLE, open_visitors // 10):,}-event add/release cycles as the "
                "consumer does, outputs dropped), divided by the visitors held; so it "
                "includes one cycle's working memory, which does not grow with visitors; the "
                "held columns themselves are "
                f"{memory.get('project:state_bytes_per_visitor', float('nan')):.0f} "
                "bytes/visitor. Baseline: the "
                "Arrow bytes of (site_id, visitor_id, session_id, first_ts, last_ts, "
                "local_day), the floor for holding this state."
                + (
                    " The previous representation, a dict of OpenSession dataclasses, "
                    f"measured the same way: {memory['dict']:,.0f} bytes/visitor."
                    if not math.isnan(memory["dict"])  # measured in full runs only
                    else ""
                )
            ),
        ),
    ]


def _session_count(table: pa.Table) -> int:
    with duckdb.connect() as con:
        con.register("events", table)
        count = "SELECT count(DISTINCT (site_id, visitor_id, session_number)) FROM "
        row = con.execute(f"{count}({DUCKDB_SESSIONS})").fetchone()
    return int(row[0]) if row else 0


def _memory_figures(visitors: int, *, with_dict: bool) -> dict[str, float]:
    """Each figure in a fresh interpreter: peak RSS is per process."""
    figures = {"dict": float("nan")}
    for mode in ("project", "dict", "arrow") if with_dict else ("project", "arrow"):
        output = subprocess.run(
            [sys.executable, "-m", "bench.bench_sessionizer", mode, str(visitors)],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent,
        ).stdout  # fmt: skip
        for line in output.splitlines():
            figures.update({f"{mode}:{k}": float(v) for k, v in json.loads(line).items()})
        figures[mode] = figures[f"{mode}:bytes_per_visitor"]
    return figures


def _memory_child(mode: str, visitors: int) -> float:
    table = synthetic_events(visitors, visitors)
    table = table.sort_by("event_ts")  # in time order, so each cycle releases its chunk
    _return_free_memory()  # what building the input freed must not count as headroom
    baseline = _rss()
    _reset_peak()
    if mode == "project":
        # Retention beyond the input's day, so that every visitor stays held.
        sessionizer = Sessionizer(SessionRules(retention_micros=48 * 3600 * SECOND))
        cycle = min(MEMORY_CYCLE, visitors // 10)
        for start in range(0, visitors, cycle):
            sessionizer.add(table.slice(start, cycle))
            sessionizer.release(final=True)
        assert len(sessionizer._open) == visitors
        print(json.dumps({"state_bytes_per_visitor": sessionizer._open.nbytes / visitors}))
        return (_peak_rss() - baseline) / visitors
    if mode == "dict":  # what the sessionizer held before: a dict of dataclasses
        held = {}
        for site, visitor, ts, event_id in zip(
            table["site_id"].to_pylist(), table["visitor_id"].to_pylist(),
            table["event_ts"].cast(pa.int64()).to_pylist(), table["event_id"].to_pylist(),
            strict=True,
        ):  # fmt: skip
            held[(site, visitor)] = OpenSession(f"{hash(event_id) % 2**128:032x}", ts, ts, None, 0)
        return (_peak_rss() - baseline) / visitors
    state = pa.table(
        {
            "site_id": table["site_id"],
            "visitor_id": table["visitor_id"],
            "session_id": pa.array([f"{i:032x}" for i in range(visitors)]),
            "first_ts": table["event_ts"].cast(pa.int64()),
            "last_ts": table["event_ts"].cast(pa.int64()),
            "local_day": pa.array(np.zeros(visitors, np.int32)),
        }
    )
    return float(state.nbytes) / visitors


def _return_free_memory() -> None:
    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    """Forget the peak reached while building the input (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":  # the memory subprocess: bench.bench_sessionizer MODE VISITORS
    started = time.perf_counter()
    per_visitor = _memory_child(sys.argv[1], int(sys.argv[2]))
    print(json.dumps({"bytes_per_visitor": per_visitor, "seconds": time.perf_counter() - started}))
