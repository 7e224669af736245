"""Acceptance property: streaming equals batch.

Any arrival order within the allowed lateness, cut into any batches, released at any
points and snapshotted/restored (through bytes) at any points, gives exactly the session
ids of one batch run over the same events: no event lost, none doubled, none late.

Arrival orders are built by sorting events on `event_ts + delay` with a delay in
[0, lateness). That satisfies the bound: if event j arrives before event i then
ts_j <= ts_j + delay_j <= ts_i + delay_i < ts_i + lateness, so ts_i > ts_j - lateness
for every earlier arrival j, i.e. ts_i >= max(earlier ts) - lateness. The test asserts
the bound again on every drawn order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.lake.store import events_to_table
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import MICROS_PER_MINUTE, Sessionizer, SessionRules

MINUTE = MICROS_PER_MINUTE
HOUR = 60 * MINUTE
DAY = 24 * HOUR
BASE_MICROS = int(datetime(2026, 11, 16, tzinfo=UTC).timestamp()) * 1_000_000

SITES = ("shop.example", "blog.example")
VISITORS = ("v1", "v2", "v3", "v4", "v5")
TIMEOUTS = (1 * MINUTE, 10 * MINUTE, 30 * MINUTE, 7 * HOUR + 55 * MINUTE)
LATENESS = (0, 1, 1 * MINUTE, 10 * MINUTE, 2 * HOUR)
RETENTION = (0, 1, 60 * MINUTE)
ZONES = ("UTC", "America/New_York", "Asia/Kolkata")
CAMPAIGNS: tuple[dict[str, str] | None, ...] = (
    None,
    None,
    None,
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"},
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "summer"},
    {"utm_source": "newsletter", "utm_medium": "email"},
)
CLIENT_SESSIONS = (None, None, None, None, None, "c1", "c2")
GAP_KINDS = (
    "zero",
    "one_micro",
    "within",
    "within",
    "within",
    "exact",
    "just_over",
    "beyond",
    "hours",
)


@dataclass(frozen=True)
class Step:
    """One batch of arrivals, then what the consumer does after it."""

    events: list[dict[str, Any]]
    release: bool
    round_trip: bool


@dataclass(frozen=True)
class Scenario:
    rules: SessionRules
    distinct: list[dict[str, Any]]  # every event once
    batch_order: list[dict[str, Any]]  # distinct + duplicates, in some order
    steps: list[Step]  # the streaming arrivals (distinct + duplicates), batched

    @property
    def arrivals(self) -> list[dict[str, Any]]:
        return [item for step in self.steps for item in step.events]


def gap(kind: str, timeout: int, fraction: float) -> int:
    return {
        "zero": 0,
        "one_micro": 1,
        "within": int(fraction * timeout),
        "exact": timeout,
        "just_over": timeout + 1,
        "beyond": timeout + 1 + int(fraction * timeout),
        "hours": int(fraction * 12 * HOUR),
    }[kind]


@st.composite
def scenarios(draw: st.DrawFn, min_events: int = 1, max_events: int = 50) -> Scenario:
    rules = SessionRules(
        timeout_micros=draw(st.sampled_from(TIMEOUTS)),
        lateness_micros=draw(st.sampled_from(LATENESS)),
        timezone=draw(st.sampled_from(ZONES)),
        split_at_midnight=draw(st.booleans()),
        split_on_campaign_change=draw(st.booleans()),
        retention_micros=draw(st.sampled_from(RETENTION)),
    )
    count = draw(st.integers(min_events, max_events))
    fractions = st.floats(0, 1, allow_nan=False)
    last_ts: dict[tuple[str, str], int] = {}
    distinct: list[dict[str, Any]] = []
    for number in range(count):
        key = (draw(st.sampled_from(SITES)), draw(st.sampled_from(VISITORS)))
        if key in last_ts:
            ts = last_ts[key] + gap(
                draw(st.sampled_from(GAP_KINDS)), rules.timeout_micros, draw(fractions)
            )
        else:  # anywhere over two days, often near a (UTC) midnight
            ts = BASE_MICROS + draw(
                st.one_of(st.integers(0, 2 * DAY), st.integers(DAY - HOUR, DAY + HOUR))
            )
        last_ts[key] = ts
        item: dict[str, Any] = {
            # Ids repeat across sites (event n on one, n + 1 on the other): unique per site.
            "event_id": f"e{number - (key[0] == SITES[1]):04d}",
            "event_name": draw(st.sampled_from(("page_view", "page_view", "purchase"))),
            "event_ts": ts,
            "site_id": key[0],
            "visitor_id": key[1],
            **(draw(st.sampled_from(CAMPAIGNS)) or {}),
        }
        client_session = draw(st.sampled_from(CLIENT_SESSIONS))
        if client_session is not None:
            item["session_id"] = client_session
        distinct.append(item)

    duplicates = draw(st.lists(st.sampled_from(distinct), max_size=max(1, count // 5)))
    everything = draw(st.permutations([*distinct, *(dict(d) for d in duplicates)]))
    lateness = rules.lateness_micros
    delays = st.integers(0, lateness - 1) if lateness > 0 else st.just(0)
    keyed = [(item["event_ts"] + draw(delays), item) for item in everything]
    keyed.sort(key=lambda pair: pair[0])  # stable: ties keep the drawn permutation
    arrivals = [item for _, item in keyed]

    steps: list[Step] = []
    start = 0
    while start < len(arrivals):
        size = draw(st.integers(1, max(1, min(len(arrivals) - start, max_events // 3))))
        steps.append(
            Step(
                events=arrivals[start : start + size],
                release=draw(st.sampled_from((True, True, True, False))),
                round_trip=draw(st.sampled_from((False, False, False, True))),
            )
        )
        start += size
    return Scenario(rules, distinct, everything, steps)


def assert_within_lateness(arrivals: Sequence[dict[str, Any]], lateness: int) -> None:
    newest: int | None = None
    for item in arrivals:
        if newest is not None:
            assert item["event_ts"] >= newest - lateness, "the drawn order breaks the bound"
        newest = item["event_ts"] if newest is None else max(newest, item["event_ts"])


def event_key(item: dict[str, Any]) -> str:
    """An event's identity: its id is unique per site."""
    return f"{item['site_id']}/{item['event_id']}"


def collect(released: Sequence[pa.Table | None]) -> dict[str, str]:
    """event key -> session_id; fails if an event is released twice."""
    mapping: dict[str, str] = {}
    for table in released:
        if table is None:
            continue
        ids = [event_key(row) for row in table.select(["site_id", "event_id"]).to_pylist()]
        repeated = [event_id for event_id, n in Counter(ids).items() if n > 1]
        assert not repeated, f"released twice in one table: {repeated}"
        for event_id, session_id in zip(ids, table["session_id"].to_pylist(), strict=True):
            assert event_id not in mapping, f"{event_id} released twice"
            mapping[event_id] = session_id
    return mapping


def batch_run(rules: SessionRules, events: Sequence[dict[str, Any]]) -> tuple[dict[str, str], int]:
    dedup = Deduplicator(window_micros=rules.lateness_micros)
    sessionizer = Sessionizer(rules)
    sessionizer.add(dedup.first_arrivals(events_to_table(events)))
    return collect([sessionizer.release(final=True)]), sessionizer.late_events


def stream_run(rules: SessionRules, steps: Sequence[Step]) -> tuple[dict[str, str], int, int]:
    # The dedup window is exactly the lateness: the tightest window that still catches
    # every duplicate of an order within the bound.
    dedup = Deduplicator(window_micros=rules.lateness_micros)
    sessionizer = Sessionizer(rules)
    released: list[pa.Table | None] = []
    for step in steps:
        sessionizer.add(dedup.first_arrivals(events_to_table(step.events)))
        if step.release:
            released.append(sessionizer.release())
        if step.round_trip:
            dedup = Deduplicator.restore(dedup.snapshot())
            sessionizer = Sessionizer.restore(sessionizer.snapshot())
    released.append(sessionizer.release(final=True))
    assert sessionizer.pending_events == 0
    return collect(released), sessionizer.late_events, dedup.duplicates


def check_streaming_equals_batch(scenario: Scenario) -> None:
    rules = scenario.rules
    assert_within_lateness(scenario.arrivals, rules.lateness_micros)
    expected_ids = {event_key(item) for item in scenario.distinct}

    batch, batch_late = batch_run(rules, scenario.batch_order)
    assert set(batch) == expected_ids
    assert batch_late == 0

    streamed, late, duplicates = stream_run(rules, scenario.steps)
    assert set(streamed) == expected_ids  # each exactly once (collect checks "once")
    assert duplicates == len(scenario.arrivals) - len(scenario.distinct)
    assert late == 0
    assert streamed == batch


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_streaming_equals_batch(scenario: Scenario) -> None:
    check_streaming_equals_batch(scenario)


def _many_events_example() -> Scenario:
    """Hundreds of events for a handful of visitors, 5 minutes apart each, with sessions
    split every 6th step, delivered in reverse within each 10-minute window (lateness
    10 min), in batches of 7, with releases and round trips throughout."""
    rules = SessionRules(
        timeout_micros=30 * MINUTE,
        lateness_micros=10 * MINUTE,
        timezone="America/New_York",
        split_at_midnight=True,
        split_on_campaign_change=True,
        retention_micros=0,
    )
    distinct: list[dict[str, Any]] = []
    for number in range(600):
        visitor = VISITORS[number % len(VISITORS)]
        step = number // len(VISITORS)
        ts = BASE_MICROS + 4 * HOUR + step * 5 * MINUTE + (step // 6) * 40 * MINUTE
        campaign = CAMPAIGNS[(step // 4) % len(CAMPAIGNS)] or {}
        item: dict[str, Any] = {
            "event_id": f"e{number:04d}",
            "event_name": "page_view",
            "event_ts": ts,
            "site_id": SITES[number % 2],
            "visitor_id": visitor,
            **campaign,
        }
        if number % 11 == 0:
            item["session_id"] = f"c{number % 3}"
        distinct.append(item)
    everything = [*distinct, *(dict(item) for item in distinct[::13])]
    # Reverse within 10-minute buckets (strictly less than the lateness apart).
    bucket = 10 * MINUTE
    arrivals = sorted(
        everything,
        key=lambda item: (item["event_ts"] // bucket, -item["event_ts"], item["event_id"]),
    )
    steps = [
        Step(arrivals[start : start + 7], release=start % 3 != 0, round_trip=start % 5 == 0)
        for start in range(0, len(arrivals), 7)
    ]
    return Scenario(rules, distinct, everything[::-1], steps)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.data_too_large,
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
    ],
)
@given(scenarios(min_events=150, max_events=400))
@example(_many_events_example())
def test_streaming_equals_batch_with_hundreds_of_events(scenario: Scenario) -> None:
    check_streaming_equals_batch(scenario)


def test_streaming_equals_batch_through_dedup_sweeps() -> None:
    """Over 2,000 distinct ids, so the Deduplicator sweeps its map mid-stream while
    duplicates are still arriving (window = lateness, the tightest that is correct)."""
    rules = SessionRules(timeout_micros=30 * MINUTE, lateness_micros=10 * MINUTE)
    distinct: list[dict[str, Any]] = [
        {
            "event_id": f"e{number:05d}",
            "event_name": "page_view",
            "event_ts": BASE_MICROS + number * 2_000_000 + (number // 1_200) * 31 * MINUTE,
            "site_id": SITES[number % 2],
            "visitor_id": VISITORS[number % len(VISITORS)],
        }
        for number in range(3_000)
    ]
    # Every event is repeated as late as the bound allows: just under 10 min later.
    copies = [dict(item) for item in distinct]
    arrival_key = [item["event_ts"] for item in distinct]
    arrival_key += [item["event_ts"] + rules.lateness_micros - 1 for item in copies]
    order = sorted(range(len(arrival_key)), key=lambda index: arrival_key[index])
    everything = [*distinct, *copies]
    arrivals = [everything[index] for index in order]
    steps = [
        Step(arrivals[start : start + 97], release=True, round_trip=start % 4 == 0)
        for start in range(0, len(arrivals), 97)
    ]
    check_streaming_equals_batch(Scenario(rules, distinct, everything, steps))
    # The stream did sweep: the map holds about one window of ids, not all of them.
    dedup = Deduplicator(window_micros=rules.lateness_micros)
    for step in steps:
        dedup.first_arrivals(events_to_table(step.events))
    assert dedup.duplicates == len(copies)
    assert len(dedup._seen) < len(distinct)


@settings(max_examples=60, deadline=None)
@given(scenarios(min_events=3, max_events=30), st.data())
def test_an_arrival_beyond_the_lateness_loses_nothing_and_is_counted(
    scenario: Scenario, data: st.DataObject
) -> None:
    """Hold the earliest event back until all the others have arrived and been released
    as far as the watermark allows: it then arrives behind events already released, so it
    is late. Still nothing is lost, and other visitors' sessions are as in batch."""
    rules = scenario.rules
    earliest = min(scenario.distinct, key=lambda item: (item["event_ts"], item["event_id"]))
    others = [item for item in scenario.arrivals if event_key(item) != event_key(earliest)]
    dedup = Deduplicator(window_micros=rules.lateness_micros)
    sessionizer = Sessionizer(rules)
    released: list[pa.Table | None] = []
    for chunk in (others[: len(others) // 2], others[len(others) // 2 :]):
        sessionizer.add(dedup.first_arrivals(events_to_table(chunk)))
        released.append(sessionizer.release())
    if data.draw(st.booleans()):
        dedup = Deduplicator.restore(dedup.snapshot())
        sessionizer = Sessionizer.restore(sessionizer.snapshot())
    already = collect(released)
    passed = [
        item for item in scenario.distinct
        if event_key(item) in already and item["event_ts"] > earliest["event_ts"]
    ]  # fmt: skip
    sessionizer.add(dedup.first_arrivals(events_to_table([earliest])))
    released.append(sessionizer.release(final=True))
    streamed = collect(released)
    assert set(streamed) == {event_key(item) for item in scenario.distinct}
    if passed:  # something later than it was released before it arrived
        assert sessionizer.late_events >= 1
    batch, _ = batch_run(rules, scenario.batch_order)
    key = (earliest["site_id"], earliest["visitor_id"])
    for item in scenario.distinct:
        if (item["site_id"], item["visitor_id"]) != key or item.get("session_id") is not None:
            assert streamed[event_key(item)] == batch[event_key(item)]


def test_a_late_arrival_is_counted_and_kept() -> None:
    rules = SessionRules(timeout_micros=30 * MINUTE, lateness_micros=10 * MINUTE)
    on_time = [
        {"event_id": f"e{n}", "event_name": "page_view", "event_ts": BASE_MICROS + n * MINUTE,
         "site_id": "shop.example", "visitor_id": f"v{n % 3}"}
        for n in range(0, 120, 4)
    ]  # fmt: skip
    late = [{**on_time[2], "event_id": "late-1"}, {**on_time[0], "event_id": "late-2"}]
    sessionizer = Sessionizer(rules)
    sessionizer.add(events_to_table(on_time))
    first = sessionizer.release()
    sessionizer.add(events_to_table(late))
    ids = collect([first, sessionizer.release(), sessionizer.release(final=True)])
    assert len(ids) == len(on_time) + len(late)
    assert sessionizer.late_events == 2
    # Each joins the session held for its visitor (v2 from e8, v0 from e0).
    assert ids["shop.example/late-1"] == ids["shop.example/e8"]
    assert ids["shop.example/late-2"] == ids["shop.example/e0"]
