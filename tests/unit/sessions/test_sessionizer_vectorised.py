"""The vectorised core against the row-by-row rules it replaces.

The sessionizer assigns ids with array operations and sends only visitors whose client
sessions interact row by row. Forcing every visitor row by row gives the reference
result; any arrival order (late events included, far beyond the lateness), any
batching, releases with or without a cutoff floor, and snapshot round trips must give
identical output tables, late counts and state.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.lake.store import events_to_table
from pipeline.privacy.hashing import keyed_hash
from pipeline.sessions.columnar import OpenSession, OpenSessionStore, keyed_hashes, local_days
from pipeline.sessions.sessionizer import MICROS_PER_MINUTE, Sessionizer, SessionRules

MINUTE = MICROS_PER_MINUTE
HOUR = 60 * MINUTE
BASE = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp()) * 1_000_000  # a DST change in NY
CAMPAIGNS: tuple[dict[str, str], ...] = (
    {},
    {},
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"},
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "summer"},
    {"utm_source": "news"},
)


@contextmanager
def row_by_row() -> Iterator[None]:
    """Every visitor through the row-by-row path: the rules as they were written."""
    original = Sessionizer._row_by_row_groups

    def every_group(self: Sessionizer, rows: Any, ready: Any, keys: Any) -> Any:
        return np.ones(len(keys), bool)

    Sessionizer._row_by_row_groups = every_group  # type: ignore[method-assign]
    try:
        yield
    finally:
        Sessionizer._row_by_row_groups = original  # type: ignore[method-assign]


@st.composite
def runs(draw: st.DrawFn) -> tuple[SessionRules, list[tuple[list[dict[str, Any]], str]]]:
    rules = SessionRules(
        timeout_micros=draw(st.sampled_from((MINUTE, 30 * MINUTE, 7 * HOUR))),
        lateness_micros=draw(st.sampled_from((0, 10 * MINUTE, 2 * HOUR))),
        timezone=draw(st.sampled_from(("UTC", "America/New_York", "Asia/Kolkata"))),
        split_at_midnight=draw(st.booleans()),
        split_on_campaign_change=draw(st.booleans()),
        retention_micros=draw(st.sampled_from((0, 60 * MINUTE))),
    )
    count = draw(st.integers(1, 80))
    events = []
    for number in range(count):
        item: dict[str, Any] = {
            "event_id": f"e{draw(st.integers(0, count + 5)):03d}",  # repeats: ties, duplicates
            "event_name": "page_view",
            "event_ts": BASE + draw(st.integers(0, 48)) * draw(st.sampled_from((MINUTE, HOUR))),
            "site_id": draw(st.sampled_from(("a.example", "b.example"))),
            "visitor_id": draw(st.sampled_from(("v1", "v2", "v3", "vé", "v4" * 20))),
            **draw(st.sampled_from(CAMPAIGNS)),
        }
        if draw(st.integers(0, 9)) == 0:
            item["session_id"] = draw(st.sampled_from(("c1", "c2")))
        item["event_id"] += f"-{number % 3}"
        events.append(item)
    steps = []
    start = 0
    while start < count:
        size = draw(st.integers(1, count - start))
        steps.append((events[start : start + size], draw(st.sampled_from(("release", "floor",
                      "round_trip", "none")))))  # fmt: skip
        start += size
    return rules, steps


def play(rules: SessionRules, steps: list[tuple[list[dict[str, Any]], str]]) -> Any:
    sessionizer = Sessionizer(rules)
    released: list[Any] = []
    for events, action in steps:
        sessionizer.add(events_to_table(events))
        if action == "round_trip":
            sessionizer = Sessionizer.restore(sessionizer.snapshot())
        floor = max(e["event_ts"] for e in events) if action == "floor" else None
        if action != "none":
            out = sessionizer.release(cutoff_floor=floor)
            released.append(None if out is None else out.to_pylist())
    out = sessionizer.release(final=True)
    released.append(None if out is None else out.to_pylist())
    return released, sessionizer.late_events, sessionizer.to_json()


@settings(max_examples=250, deadline=None)
@given(runs())
def test_vectorised_equals_row_by_row(run: tuple[SessionRules, Any]) -> None:
    rules, steps = run
    vectorised = play(rules, steps)
    with row_by_row():
        reference = play(rules, steps)
    assert vectorised == reference


def test_many_visitors_in_one_release_equal_row_by_row() -> None:
    rng = np.random.default_rng(3)
    events = [
        {"event_id": f"e{n}", "event_name": "page_view",
         "event_ts": BASE + int(rng.integers(0, 6 * HOUR)), "site_id": "shop.example",
         "visitor_id": f"v{int(rng.integers(0, 300))}",
         **CAMPAIGNS[int(rng.integers(0, len(CAMPAIGNS)))]}
        for n in range(3_000)
    ]  # fmt: skip
    rules = SessionRules(split_at_midnight=True, split_on_campaign_change=True,
                         timezone="America/New_York")  # fmt: skip
    steps = [(events[:1_000], "release"), (events[1_000:], "floor")]
    vectorised = play(rules, steps)
    with row_by_row():
        assert play(rules, steps) == vectorised


def test_campaign_codes_are_renumbered_without_changing_a_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """utm values come from URLs anyone can vary: the store keeps codes only for the
    campaigns open sessions hold. Renumbering after every release changes no output."""
    rng = np.random.default_rng(5)
    events = [
        {"event_id": f"e{n}", "event_name": "page_view", "event_ts": BASE + n * MINUTE,
         "site_id": "shop.example", "visitor_id": f"v{int(rng.integers(0, 40))}",
         "utm_source": "ads", "utm_campaign": f"c{int(rng.integers(0, 25))}"}
        for n in range(1_200)
    ]  # fmt: skip
    rules = SessionRules(split_on_campaign_change=True, timeout_micros=30 * MINUTE)
    steps = [(events[start : start + 100], "release") for start in range(0, 1_200, 100)]
    as_before = play(rules, steps)
    monkeypatch.setattr("pipeline.sessions.columnar._CAMPAIGN_SLACK", -(10**9))  # every release
    assert play(rules, steps) == as_before

    sessionizer = Sessionizer(rules)
    for start in range(0, 1_200, 100):
        distinct = [{**event, "utm_campaign": f"{start}-{event['event_id']}"}
                    for event in events[start : start + 100]]  # fmt: skip
        sessionizer.add(events_to_table(distinct))
        sessionizer.release()
    assert len(sessionizer._open._campaigns) <= len(sessionizer._open)


def test_keyed_hashes_equal_keyed_hash() -> None:
    columns = [["s", "shop.example", "é"], ["v", "", "x" * 200], ["0", "-5", "17"]]
    got = keyed_hashes(b"k", [pa.array(column) for column in columns], 32)
    expected = [keyed_hash(b"k", *parts) for parts in zip(*columns, strict=True)]
    assert [value.decode() for value in got.tolist()] == expected


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_local_days_equal_the_per_event_conversion(zone: str) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from pipeline.events.timestamps import EPOCH

    stamps: npt.NDArray[np.int64] = BASE + np.arange(-400, 400, dtype=np.int64) * 7 * MINUTE + 13
    expected = [
        (EPOCH + timedelta(microseconds=int(ts))).astimezone(ZoneInfo(zone)).toordinal()
        for ts in stamps.tolist()
    ]
    assert local_days(stamps, ZoneInfo(zone)).tolist() == expected


def test_the_store_is_a_mapping_of_open_sessions() -> None:
    store = OpenSessionStore()
    entries = [
        ("a.example", "v\x00", OpenSession("x" * 32, 1, 2, None, 0)),
        ("a.example", "v", OpenSession("y" * 32, 3, 4, ("g", None, "c"), 5)),
        ("b.example", "v", OpenSession("z" * 40, 5, 6, None, 0)),  # a longer id widens
    ]
    store.put_many(entries)
    assert len(store) == 3
    assert dict(store) == {(site, visitor): held for site, visitor, held in entries}
    assert ("b.example", "w") not in store
    store.put_many([("a.example", "v", OpenSession("w" * 32, 7, 8, None, 0))])
    assert store["a.example", "v"].first_ts == 7
    assert len(store) == 3
