"""The GA4 sessionization rules, one small hand-made case each.

Events are built at minute offsets from a fixed UTC base time (a Monday at 00:00 UTC,
outside any daylight-saving change), so every gap below is explicit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from pipeline.lake.store import events_to_table
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import (
    MICROS_PER_MINUTE,
    Sessionizer,
    SessionRules,
    session_id_for_client_session,
    session_id_for_first_event,
)

MINUTE = MICROS_PER_MINUTE
HOUR = 60 * MINUTE
BASE = datetime(2026, 11, 16, tzinfo=UTC)  # Monday 00:00 UTC; New York is UTC-5 then
BASE_MICROS = int(BASE.timestamp()) * 1_000_000
HEX32 = re.compile(r"[0-9a-f]{32}")


def micros_at(minutes: float, plus_micros: int = 0) -> int:
    return BASE_MICROS + round(minutes * MINUTE) + plus_micros


def event(
    event_id: str,
    minutes: float,
    *,
    plus_micros: int = 0,
    site: str = "shop.example",
    visitor: str = "v1",
    client_session: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A canonical page view `minutes` (+ `plus_micros`) after BASE."""
    built: dict[str, Any] = {
        "event_id": event_id,
        "event_name": "page_view",
        "event_ts": micros_at(minutes, plus_micros),
        "site_id": site,
        "visitor_id": visitor,
        **fields,
    }
    if client_session is not None:
        built["session_id"] = client_session
    return built


def rules(
    *,
    timeout_minutes: float = 30,
    lateness_minutes: float = 10,
    timezone: str = "UTC",
    split_at_midnight: bool = False,
    split_on_campaign_change: bool = False,
    retention_minutes: float = 60,
) -> SessionRules:
    return SessionRules(
        timeout_micros=round(timeout_minutes * MINUTE),
        lateness_micros=round(lateness_minutes * MINUTE),
        timezone=timezone,
        split_at_midnight=split_at_midnight,
        split_on_campaign_change=split_on_campaign_change,
        retention_micros=round(retention_minutes * MINUTE),
    )


def session_map(tables: Iterable[pa.Table | None]) -> dict[str, str]:
    """event_id -> assigned session_id over released tables; each event exactly once."""
    mapping: dict[str, str] = {}
    for table in tables:
        if table is None:
            continue
        for event_id, session_id in zip(
            table["event_id"].to_pylist(), table["session_id"].to_pylist(), strict=True
        ):
            assert event_id not in mapping, f"{event_id} released twice"
            mapping[event_id] = session_id
    return mapping


def sessionize(events: Sequence[dict[str, Any]], session_rules: SessionRules) -> dict[str, str]:
    """One batch, final release: the reference result."""
    sessionizer = Sessionizer(session_rules)
    sessionizer.add(events_to_table(events))
    mapping = session_map([sessionizer.release(final=True)])
    assert sorted(mapping) == sorted(e["event_id"] for e in events)
    assert sessionizer.late_events == 0
    return mapping


def session_count(mapping: dict[str, str]) -> int:
    return len(set(mapping.values()))


# -- inactivity timeout ---------------------------------------------------------------------


def test_a_gap_of_exactly_the_timeout_continues_the_session() -> None:
    ids = sessionize([event("a", 0), event("b", 30)], rules())
    assert ids["a"] == ids["b"]


def test_a_gap_one_microsecond_over_the_timeout_starts_a_new_session() -> None:
    ids = sessionize([event("a", 0), event("b", 30, plus_micros=1)], rules())
    assert ids["a"] != ids["b"]
    assert ids["b"] == session_id_for_first_event("shop.example", "v1", micros_at(30, 1), "b")


def test_the_gap_is_measured_from_the_last_event_not_the_first() -> None:
    # 0, 25, 50, 75: every gap is 25 min, so one session lasting 75 min.
    ids = sessionize([event(f"e{i}", 25 * i) for i in range(4)], rules())
    assert session_count(ids) == 1


@pytest.mark.parametrize("timeout_minutes", [1, 7 * 60 + 55])
def test_custom_timeout_boundaries(timeout_minutes: int) -> None:
    session_rules = rules(timeout_minutes=timeout_minutes)
    exact = sessionize([event("a", 0), event("b", timeout_minutes)], session_rules)
    assert exact["a"] == exact["b"]
    over = sessionize([event("a", 0), event("b", timeout_minutes, plus_micros=1)], session_rules)
    assert over["a"] != over["b"]


def test_a_long_custom_timeout_keeps_what_the_default_would_split() -> None:
    events = [event("a", 0), event("b", 4 * 60)]
    assert session_count(sessionize(events, rules())) == 2
    assert session_count(sessionize(events, rules(timeout_minutes=7 * 60 + 55))) == 1


# -- client session ids ---------------------------------------------------------------------


def test_different_client_session_ids_split_a_visitor_within_the_timeout() -> None:
    ids = sessionize(
        [event("a", 0, client_session="111"), event("b", 1, client_session="222")], rules()
    )
    assert ids["a"] != ids["b"]
    assert ids["a"] == session_id_for_client_session("shop.example", "v1", "111")
    assert ids["b"] == session_id_for_client_session("shop.example", "v1", "222")


def test_the_same_client_session_id_spans_a_gap_longer_than_the_timeout() -> None:
    ids = sessionize(
        [event("a", 0, client_session="111"), event("b", 120, client_session="111")], rules()
    )
    assert ids["a"] == ids["b"]


def test_client_session_id_is_the_same_whatever_the_order_or_batching() -> None:
    events = [event(f"e{i}", 7 * i, client_session="111") for i in range(5)]
    forward = sessionize(events, rules())
    backward = sessionize(events[::-1], rules())
    assert forward == backward
    expected = session_id_for_client_session("shop.example", "v1", "111")
    assert set(forward.values()) == {expected}

    sessionizer = Sessionizer(rules())
    released = []
    for item in events[::-1]:  # one event per batch, latest first, all within lateness
        sessionizer.add(events_to_table([item]))
        released.append(sessionizer.release())
    released.append(sessionizer.release(final=True))
    assert session_map(released) == forward


def test_client_session_id_is_scoped_to_site_and_visitor() -> None:
    ids = sessionize(
        [
            event("a", 0, client_session="111"),
            event("b", 1, client_session="111", visitor="v2"),
            event("c", 2, client_session="111", site="blog.example"),
        ],
        rules(),
    )
    assert session_count(ids) == 3


def test_the_client_session_id_is_kept_as_client_session_id() -> None:
    sessionizer = Sessionizer(rules())
    sessionizer.add(events_to_table([event("a", 0, client_session="111"), event("b", 1)]))
    out = sessionizer.release(final=True)
    assert out is not None
    kept = dict(zip(out["event_id"].to_pylist(), out["client_session_id"].to_pylist(), strict=True))
    assert kept == {"a": "111", "b": None}
    assert out.column_names.count("session_id") == 1


def test_an_event_without_session_id_joins_the_open_client_session() -> None:
    """Issue row 1: a server-side purchase sent without ga_session_id, five minutes after
    the visit's page views, belongs to that visit."""
    ids = sessionize(
        [event("a", 0, client_session="S1"), event("b", 2, client_session="S1"),
         event("buy", 7, event_name="purchase")],
        rules(),
    )  # fmt: skip
    assert session_count(ids) == 1
    assert ids["buy"] == session_id_for_client_session("shop.example", "v1", "S1")


def test_an_event_without_session_id_joins_within_the_timeout_only() -> None:
    ids = sessionize(
        [event("a", 0, client_session="S1"), event("at", 30), event("over", 61)], rules()
    )
    assert ids["at"] == ids["a"]  # exactly the timeout after the session's last event
    assert ids["over"] != ids["a"]  # more than the timeout after "at", which extended it


def test_an_event_without_session_id_before_the_client_session_stands_apart() -> None:
    ids = sessionize([event("early", 0), event("a", 1, client_session="S1")], rules())
    assert ids["early"] != ids["a"]


def test_an_event_without_session_id_joins_the_latest_client_session() -> None:
    ids = sessionize(
        [event("a", 0, client_session="S1"), event("b", 5, client_session="S2"),
         event("c", 6)],
        rules(),
    )  # fmt: skip
    assert ids["c"] == ids["b"] != ids["a"]


def test_an_open_client_session_survives_a_snapshot() -> None:
    sessionizer = Sessionizer(rules())
    sessionizer.add(events_to_table([event("a", 0, client_session="S1"), event("z", 20)]))
    first = sessionizer.release()
    restored = Sessionizer.restore(sessionizer.snapshot())
    restored.add(events_to_table([event("b", 25)]))
    ids = session_map([first, restored.release(final=True)])
    assert ids["a"] == ids["z"] == ids["b"]


def test_a_version_2_snapshot_is_still_read() -> None:
    state = Sessionizer(rules()).to_json()
    del state["open_client"]
    restored = Sessionizer.restore(json.dumps({**state, "version": 2}).encode())
    restored.add(events_to_table([event("a", 0)]))
    assert session_count(session_map([restored.release(final=True)])) == 1


# -- midnight --------------------------------------------------------------------------------


def test_a_session_crossing_midnight_stays_one_by_default() -> None:
    ids = sessionize([event("a", -10), event("b", 10)], rules())  # 23:50 and 00:10 UTC
    assert ids["a"] == ids["b"]


def test_split_at_midnight_splits_at_utc_midnight_for_a_utc_property() -> None:
    ids = sessionize([event("a", -10), event("b", 10)], rules(split_at_midnight=True))
    assert ids["a"] != ids["b"]
    assert ids["b"] == session_id_for_first_event("shop.example", "v1", micros_at(10), "b")


def test_split_at_midnight_is_exact_to_the_microsecond() -> None:
    # 23:59:59.999999 and 00:00:00.000000: different days.
    ids = sessionize([event("a", 0, plus_micros=-1), event("b", 0)], rules(split_at_midnight=True))
    assert ids["a"] != ids["b"]


def test_split_at_midnight_uses_the_property_time_zone() -> None:
    new_york = rules(split_at_midnight=True, timezone="America/New_York")
    # 23:50 and 00:10 UTC are 18:50 and 19:10 in New York: same local day.
    utc_midnight = sessionize([event("a", -10), event("b", 10)], new_york)
    assert utc_midnight["a"] == utc_midnight["b"]
    # 04:50 and 05:10 UTC are 23:50 and 00:10 in New York (UTC-5 in November).
    local_midnight = sessionize([event("a", 5 * 60 - 10), event("b", 5 * 60 + 10)], new_york)
    assert local_midnight["a"] != local_midnight["b"]


def test_split_at_midnight_uses_each_sites_own_time_zone() -> None:
    # tokyo.example keeps Asia/Tokyo (UTC+9); shop.example the property's UTC.
    zoned = SessionRules(split_at_midnight=True, site_timezones=(("tokyo.example", "Asia/Tokyo"),))
    pairs = [
        (-10, 10),  # 23:50 and 00:10 UTC: 08:50 and 09:10 in Tokyo
        (15 * 60 - 10, 15 * 60 + 10),  # 14:50 and 15:10 UTC: 23:50 and 00:10 in Tokyo
    ]
    events = [
        event(f"{site}-{n}-{half}", minute, site=site, visitor=f"v{n}")
        for site in ("shop.example", "tokyo.example")
        for n, pair in enumerate(pairs)
        for half, minute in zip("ab", pair, strict=True)
    ]
    ids = sessionize(events, zoned)
    split = {
        (site, n): ids[f"{site}-{n}-a"] != ids[f"{site}-{n}-b"]
        for site in ("shop.example", "tokyo.example")
        for n in range(len(pairs))
    }
    assert split == {
        ("shop.example", 0): True,
        ("shop.example", 1): False,
        ("tokyo.example", 0): False,
        ("tokyo.example", 1): True,
    }


def test_split_at_midnight_with_a_half_hour_offset_zone() -> None:
    kolkata = rules(split_at_midnight=True, timezone="Asia/Kolkata")  # UTC+5:30
    # 18:20 and 18:40 UTC the day before are 23:50 and 00:10 in Kolkata.
    ids = sessionize([event("a", -5 * 60 - 40), event("b", -5 * 60 - 20)], kolkata)
    assert ids["a"] != ids["b"]
    same_day = sessionize([event("a", -10), event("b", 10)], kolkata)  # 05:20, 05:40 local
    assert same_day["a"] == same_day["b"]


@pytest.mark.parametrize(
    ("utc_minutes", "splits"),
    [
        # 2026-11-01 is the end of daylight saving time in New York: EDT until 06:00 UTC.
        # Midnight opening 2026-11-02 local is 05:00 UTC (EST).
        ((24 * 60 + 4 * 60 + 50, 24 * 60 + 5 * 60 + 10), True),  # 23:50 / 00:10 EST
        ((24 * 60 + 3 * 60 + 50, 24 * 60 + 4 * 60 + 10), False),  # 22:50 / 23:10 EST
    ],
)
def test_split_at_midnight_across_a_daylight_saving_change(
    utc_minutes: tuple[int, int], splits: bool
) -> None:
    shift = -15 * 24 * 60  # BASE - 15 days = 2026-11-01 00:00 UTC
    new_york = rules(split_at_midnight=True, timezone="America/New_York")
    ids = sessionize(
        [event("a", shift + utc_minutes[0]), event("b", shift + utc_minutes[1])], new_york
    )
    assert (ids["a"] != ids["b"]) is splits


# -- campaign change -------------------------------------------------------------------------

SPRING: dict[str, Any] = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "a"}
SUMMER: dict[str, Any] = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "b"}


def test_a_campaign_change_does_not_split_by_default() -> None:
    ids = sessionize([event("a", 0, **SPRING), event("b", 5, **SUMMER)], rules())
    assert ids["a"] == ids["b"]


def test_a_campaign_change_splits_when_enabled() -> None:
    ids = sessionize(
        [event("a", 0, **SPRING), event("b", 5, **SUMMER)], rules(split_on_campaign_change=True)
    )
    assert ids["a"] != ids["b"]


def test_the_same_campaign_again_does_not_split() -> None:
    ids = sessionize(
        [event("a", 0, **SPRING), event("b", 5, **SPRING)], rules(split_on_campaign_change=True)
    )
    assert ids["a"] == ids["b"]


def test_an_event_without_campaign_fields_does_not_split() -> None:
    ids = sessionize(
        [event("a", 0, **SPRING), event("b", 5), event("c", 10, **SPRING)],
        rules(split_on_campaign_change=True),
    )
    assert session_count(ids) == 1


def test_a_campaign_after_a_direct_first_event_splits_when_enabled() -> None:
    events = [event("a", 0), event("b", 5, **SPRING)]
    assert session_count(sessionize(events, rules())) == 1
    ids = sessionize(events, rules(split_on_campaign_change=True))
    assert ids["a"] != ids["b"]


def test_a_change_of_source_alone_is_a_campaign_change() -> None:
    ids = sessionize(
        [event("a", 0, utm_source="google"), event("b", 5, utm_source="bing")],
        rules(split_on_campaign_change=True),
    )
    assert ids["a"] != ids["b"]


# -- key, ids --------------------------------------------------------------------------------


def test_the_same_visitor_id_on_two_sites_is_two_sessions() -> None:
    ids = sessionize(
        [event("a", 0, site="shop.example"), event("b", 1, site="blog.example")], rules()
    )
    assert ids["a"] != ids["b"]


def test_two_visitors_on_one_site_are_two_sessions() -> None:
    ids = sessionize([event("a", 0, visitor="v1"), event("b", 1, visitor="v2")], rules())
    assert ids["a"] != ids["b"]


def test_ids_are_deterministic_whatever_the_order_in_a_batch() -> None:
    events = [
        event("a", 0),
        event("b", 20, **SPRING),
        event("c", 100),
        event("d", 100),  # same instant as c: ordered by event_id
        event("e", 5, visitor="v2"),
        event("f", 6, visitor="v2", client_session="9"),
        event("g", 8, site="blog.example"),
    ]
    for session_rules in (rules(), rules(split_on_campaign_change=True, split_at_midnight=True)):
        forward = sessionize(events, session_rules)
        assert sessionize(events[::-1], session_rules) == forward
        assert all(HEX32.fullmatch(value) for value in forward.values())
        assert (
            forward["c"]
            == forward["d"]
            == session_id_for_first_event("shop.example", "v1", micros_at(100), "c")
        )


def test_a_session_id_is_the_hash_of_its_first_event() -> None:
    ids = sessionize([event("b", 3), event("a", 5)], rules())
    expected = session_id_for_first_event("shop.example", "v1", micros_at(3), "b")
    assert ids == {"a": expected, "b": expected}


# -- late events -----------------------------------------------------------------------------


def held_session() -> tuple[Sessionizer, str]:
    """Visitor v1 has a released session 10:00-10:20 (BASE-relative minutes 600, 620),
    and the watermark is past it (v2's event at 11:00, lateness 10 min)."""
    sessionizer = Sessionizer(rules())
    sessionizer.add(
        events_to_table([event("a", 600), event("b", 620), event("w", 660, visitor="v2")])
    )
    ids = session_map([sessionizer.release()])
    assert set(ids) == {"a", "b"}
    assert sessionizer.late_events == 0
    return sessionizer, ids["a"]


@pytest.mark.parametrize(
    ("late_minutes", "plus_micros", "joins"),
    [
        (610, 0, True),  # inside the held session
        (580, 0, True),  # before it, within the timeout of its first event
        (570, 0, True),  # exactly one timeout before its first event
        (570, -1, False),  # one microsecond more
        (300, 0, False),  # far earlier
    ],
)
def test_a_late_event_joins_the_held_session_only_if_it_fits(
    late_minutes: int, plus_micros: int, joins: bool
) -> None:
    sessionizer, held = held_session()
    sessionizer.add(events_to_table([event("late", late_minutes, plus_micros=plus_micros)]))
    ids = session_map([sessionizer.release()])
    assert set(ids) == {"late"}
    assert sessionizer.late_events == 1
    if joins:
        assert ids["late"] == held
    else:
        assert ids["late"] == session_id_for_first_event(
            "shop.example", "v1", micros_at(late_minutes, plus_micros), "late"
        )


def test_a_late_event_that_starts_its_own_session_does_not_replace_the_held_one() -> None:
    sessionizer, held = held_session()
    sessionizer.add(events_to_table([event("early", 300)]))
    sessionizer.release()
    sessionizer.add(events_to_table([event("c", 640)]))  # 20 min after b: same session
    ids = session_map([sessionizer.release(final=True)])
    assert ids["c"] == held


def test_late_events_are_never_dropped_and_are_counted() -> None:
    dedup = Deduplicator(window_micros=24 * HOUR)
    sessionizer = Sessionizer(rules())
    arrivals = [
        [event("a", 600), event("b", 620)],
        [event("w", 700, visitor="v2"), event("a", 600)],  # a again: a duplicate
        [event("late1", 610), event("late2", 100), event("late3", 10, visitor="v3")],
        [event("x", 705), event("late2", 100)],  # late2 again
    ]
    released: list[pa.Table | None] = []
    for batch in arrivals:
        sessionizer.add(dedup.first_arrivals(events_to_table(batch)))
        released.append(sessionizer.release())
    released.append(sessionizer.release(final=True))
    ids = session_map(released)
    total = sum(len(batch) for batch in arrivals)
    assert dedup.duplicates == 2
    assert len(ids) == total - dedup.duplicates
    assert set(ids) == {"a", "b", "w", "late1", "late2", "late3", "x"}
    assert sessionizer.late_events == 3
    assert ids["late1"] == ids["a"]
    assert ids["late2"] != ids["a"]


def test_an_on_time_arrival_is_not_late() -> None:
    sessionizer = Sessionizer(rules())
    sessionizer.add(events_to_table([event("a", 0), event("b", 60)]))
    sessionizer.release()  # releases a; the watermark is at 50
    sessionizer.add(events_to_table([event("c", 50)]))  # exactly at the watermark: on time
    ids = session_map([sessionizer.release(final=True)])
    assert set(ids) == {"b", "c"}
    assert sessionizer.late_events == 0


def test_an_event_behind_the_watermark_is_late_even_if_nothing_was_released_yet() -> None:
    def late_count(first_batch: list[dict[str, Any]]) -> int:
        sessionizer = Sessionizer(rules())
        sessionizer.add(events_to_table(first_batch))
        first = sessionizer.release()  # watermark 90
        sessionizer.add(events_to_table([event("a", 50)]))  # 40 min behind the watermark
        ids = session_map([first, sessionizer.release(final=True)])
        assert set(ids) == {"a"} | {item["event_id"] for item in first_batch}
        return sessionizer.late_events

    # Counted when another visitor's event happened to be released first...
    assert late_count([event("w", 80, visitor="v2"), event("b", 100)]) == 1
    # ...but not when that release had nothing ready: same arrival for v1, same watermark.
    assert late_count([event("b", 100)]) == 1


def test_a_late_event_before_midnight_does_not_join_a_session_after_midnight() -> None:
    sessionizer = Sessionizer(rules(split_at_midnight=True))
    sessionizer.add(events_to_table([event("b", 5), event("w", 60, visitor="v2")]))
    assert set(session_map([sessionizer.release()])) == {"b"}  # 00:05 released
    sessionizer.add(events_to_table([event("a", -2)]))  # 23:58 the day before, late
    ids = session_map([sessionizer.release(final=True)])
    assert sessionizer.late_events == 1
    assert ids["a"] != session_id_for_first_event("shop.example", "v1", micros_at(5), "b")


def test_a_late_event_of_another_campaign_does_not_join_the_held_session() -> None:
    sessionizer = Sessionizer(rules(split_on_campaign_change=True))
    sessionizer.add(events_to_table([event("b", 5, **SUMMER), event("w", 60, visitor="v2")]))
    assert set(session_map([sessionizer.release()])) == {"b"}
    sessionizer.add(events_to_table([event("a", 0, **SPRING)]))  # late, another campaign
    ids = session_map([sessionizer.release(final=True)])
    assert sessionizer.late_events == 1
    assert ids["a"] != session_id_for_first_event("shop.example", "v1", micros_at(5), "b")


# -- watermark and memory --------------------------------------------------------------------


def test_release_holds_events_until_the_watermark_passes_them() -> None:
    sessionizer = Sessionizer(rules(lateness_minutes=10))
    sessionizer.add(events_to_table([event("a", 0), event("b", 5), event("c", 10)]))
    assert session_map([sessionizer.release()]) == {}  # watermark at 0: strictly below
    assert sessionizer.pending_events == 3
    sessionizer.add(events_to_table([event("d", 15)]))
    assert set(session_map([sessionizer.release()])) == {"a"}
    assert set(session_map([sessionizer.release(final=True)])) == {"b", "c", "d"}
    assert sessionizer.pending_events == 0
    assert sessionizer.release(final=True) is None


def test_eviction_bounds_the_open_session_map() -> None:
    session_rules = rules(timeout_minutes=30, retention_minutes=60, lateness_minutes=10)
    sessionizer = Sessionizer(session_rules)
    sessionizer.add(events_to_table([event(f"e{i}", i % 10, visitor=f"v{i}") for i in range(200)]))
    sessionizer.add(events_to_table([event("push", 30, visitor="pusher")]))
    released = session_map([sessionizer.release()])
    assert len(released) == 200
    assert len(sessionizer._open) == 200  # still within timeout + retention
    # Far beyond timeout + retention (+ lateness): every held visitor is evicted.
    sessionizer.add(events_to_table([event("future", 24 * 60, visitor="late-riser")]))
    assert set(session_map([sessionizer.release()])) == {"push"}
    assert len(sessionizer._open) == 0
    # A visitor coming back after eviction gets a new session, as the timeout implies.
    sessionizer.add(events_to_table([event("back", 24 * 60, visitor="v7")]))
    ids = session_map([sessionizer.release(final=True)])
    assert ids["back"] == session_id_for_first_event(
        "shop.example", "v7", micros_at(24 * 60), "back"
    )
    assert len(sessionizer._open) == 2


# -- snapshot and restore --------------------------------------------------------------------


def test_snapshot_restore_keeps_pending_events_and_open_sessions() -> None:
    session_rules = rules(split_on_campaign_change=True, split_at_midnight=True)
    batches = [
        [event("a", -40, **SPRING), event("b", -20), event("c", -15, visitor="v2")],
        [event("d", -5, client_session="7"), event("e", 0)],
        [event("f", 10, **SUMMER), event("g", 25, visitor="v2")],
        [event("h", 40), event("i", 41, visitor="v2")],
    ]

    def run(round_trip_after: int | None) -> tuple[dict[str, str], int]:
        sessionizer = Sessionizer(session_rules)
        released: list[pa.Table | None] = []
        for number, batch in enumerate(batches):
            sessionizer.add(events_to_table(batch))
            released.append(sessionizer.release())
            if number == round_trip_after:
                pending, open_sessions = sessionizer.pending_events, dict(sessionizer._open)
                sessionizer = Sessionizer.restore(sessionizer.snapshot())
                assert sessionizer.pending_events == pending
                assert sessionizer._open == open_sessions
                assert sessionizer.rules == session_rules
        released.append(sessionizer.release(final=True))
        return session_map(released), sessionizer.late_events

    reference = run(None)
    assert len(reference[0]) == 9
    for point in range(len(batches)):
        assert run(point) == reference


def test_a_snapshot_is_independent_of_later_changes() -> None:
    sessionizer = Sessionizer(rules())
    sessionizer.add(events_to_table([event("a", 0), event("b", 30)]))
    sessionizer.release()
    data = sessionizer.snapshot()
    sessionizer.add(events_to_table([event("c", 45)]))
    first = session_map([sessionizer.release(final=True)])
    again = Sessionizer.restore(data)
    again.add(events_to_table([event("c", 45)]))
    assert session_map([again.release(final=True)]) == first


def test_a_snapshot_of_another_version_is_refused() -> None:
    bad = json.dumps({**Sessionizer(rules()).to_json(), "version": 999}).encode()
    with pytest.raises(ValueError, match="version"):
        Sessionizer.restore(bad)


# -- dedup ----------------------------------------------------------------------------------


def names(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table["event_id"].to_pylist(), table["event_name"].to_pylist(), strict=True))


def test_dedup_first_arrival_wins_within_a_table() -> None:
    dedup = Deduplicator(window_micros=HOUR)
    table = events_to_table(
        [event("a", 0), event("b", 1), {**event("a", 0), "event_name": "purchase"}]
    )
    assert names(dedup.first_arrivals(table)) == [("a", "page_view"), ("b", "page_view")]
    assert dedup.duplicates == 1


def test_dedup_first_arrival_wins_across_tables() -> None:
    dedup = Deduplicator(window_micros=HOUR)
    assert dedup.first_arrivals(events_to_table([event("a", 0)])).num_rows == 1
    again = dedup.first_arrivals(
        events_to_table([{**event("a", 0), "event_name": "purchase"}, event("c", 2)])
    )
    assert names(again) == [("c", "page_view")]
    dedup.first_arrivals(events_to_table([event("a", 0), event("c", 2)]))
    assert dedup.duplicates == 3


def test_dedup_of_an_empty_table() -> None:
    dedup = Deduplicator(window_micros=HOUR)
    assert dedup.first_arrivals(events_to_table([])).num_rows == 0
    assert dedup.duplicates == 0


def test_dedup_snapshot_restore_preserves_seen_ids() -> None:
    dedup = Deduplicator(window_micros=HOUR)
    dedup.first_arrivals(events_to_table([event("a", 0), event("a", 0), event("b", 1)]))
    restored = Deduplicator.restore(dedup.snapshot())
    assert restored.duplicates == 1
    assert restored.window_micros == HOUR
    out = restored.first_arrivals(events_to_table([event("b", 1), event("c", 2), event("a", 0)]))
    assert names(out) == [("c", "page_view")]
    assert restored.duplicates == 3
    assert dedup.duplicates == 1  # the original is untouched


def test_dedup_keeps_ids_within_the_window_when_it_sweeps() -> None:
    window = 10 * MINUTE
    dedup = Deduplicator(window_micros=window)
    # 2,500 distinct events one second apart: enough to make the map sweep.
    many = [event(f"e{i:05d}", i / 60) for i in range(2_500)]
    dedup.first_arrivals(events_to_table(many))
    newest = many[-1]["event_ts"]
    recent = [e for e in many if e["event_ts"] >= newest - window]
    old = [e for e in many if e["event_ts"] < newest - window]
    assert dedup.first_arrivals(events_to_table(recent)).num_rows == 0  # still caught
    # Older ids are forgotten (documented: the warehouse de-duplicates once more).
    assert dedup.first_arrivals(events_to_table(old[:5])).num_rows == 5


def test_dedup_snapshot_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        Deduplicator.restore(json.dumps({**Deduplicator(HOUR).to_json(), "version": 999}).encode())


def test_dedup_is_per_site() -> None:
    """Issue row 4: event "1" on a.example and on b.example are two events."""
    dedup = Deduplicator(window_micros=HOUR)
    table = events_to_table(
        [event("1", 0, site="a.example"), event("1", 1, site="b.example"),
         event("1", 2, site="a.example")]
    )  # fmt: skip
    kept = dedup.first_arrivals(table)
    assert kept["site_id"].to_pylist() == ["a.example", "b.example"]
    assert dedup.duplicates == 1


def test_a_version_2_dedup_snapshot_matches_its_ids_on_any_site() -> None:
    """Version 2 kept ids without their site: they still catch a repeat after an upgrade."""
    old = {"version": 2, "window_micros": HOUR, "seen": {"a": BASE_MICROS},
           "newest": BASE_MICROS, "duplicates": 0}  # fmt: skip
    restored = Deduplicator.restore(json.dumps(old).encode())
    out = restored.first_arrivals(events_to_table([event("a", 0), event("b", 1)]))
    assert out["event_id"].to_pylist() == ["b"]
    again = Deduplicator.restore(restored.snapshot())
    assert again.first_arrivals(events_to_table([event("a", 0)])).num_rows == 0


def test_an_anonymous_event_never_drops_an_authenticated_one() -> None:
    """An authenticated event is a repeat only of an authenticated one; an anonymous one
    of either. Both orders, and in one batch or two."""
    anonymous: dict[str, Any] = {"trust": "anonymous"}
    authenticated: dict[str, Any] = {"trust": "authenticated"}
    for batches in (
        [[event("o", 0, **anonymous), event("o", 1, **authenticated)]],
        [[event("o", 0, **anonymous)], [event("o", 1, **authenticated)]],
    ):
        dedup = Deduplicator(window_micros=HOUR)
        kept = [dedup.first_arrivals(events_to_table(batch)) for batch in batches]
        assert [t for table in kept for t in table["trust"].to_pylist()] == [
            "anonymous", "authenticated",
        ]  # fmt: skip
        assert dedup.duplicates == 0
    dedup = Deduplicator(window_micros=HOUR)
    table = events_to_table(
        [event("o", 0, **authenticated), event("o", 1, **anonymous), event("o", 2),
         event("a", 3, **anonymous), event("a", 4, **anonymous)]
    )  # fmt: skip
    kept = Deduplicator.restore(dedup.snapshot()).first_arrivals(table)
    # A missing trust is authenticated: the third "o" repeats the first.
    assert list(zip(kept["event_id"].to_pylist(), kept["trust"].to_pylist(), strict=True)) == [
        ("o", "authenticated"), ("a", "anonymous"),
    ]  # fmt: skip


def test_the_anonymous_ids_survive_a_snapshot_and_a_version_3_snapshot_is_authenticated() -> None:
    dedup = Deduplicator(window_micros=HOUR)
    dedup.first_arrivals(events_to_table([event("a", 0, trust="anonymous")]))
    restored = Deduplicator.restore(dedup.snapshot())
    assert json.loads(dedup.snapshot())["version"] == 4
    assert (
        restored.first_arrivals(events_to_table([event("a", 1, trust="anonymous")])).num_rows == 0
    )
    assert restored.first_arrivals(events_to_table([event("a", 2)])).num_rows == 1
    # Version 3 kept ids without their trust: read as authenticated (a missing trust).
    old = {"version": 3, "window_micros": HOUR, "seen": {"shop.example\x1fo": BASE_MICROS},
           "unsited": {}, "newest": BASE_MICROS, "duplicates": 0}  # fmt: skip
    from_v3 = Deduplicator.restore(json.dumps(old).encode())
    assert (
        from_v3.first_arrivals(events_to_table([event("o", 1, trust="authenticated")])).num_rows
        == 0
    )
