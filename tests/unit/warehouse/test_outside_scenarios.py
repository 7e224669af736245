"""Published session scenarios of other analytics projects, run through sessionflow.

Sources (each test quotes its own):
- Plausible Analytics, github.com/plausible/analytics:
  test/plausible/session/cache_store_test.exs (also store_test.exs),
  "calculates duration correctly for out-of-order events";
  test/plausible_web/controllers/api/session_duration_test.exs (commit 1973a4c),
  "pageview updates the visit_duration only for that session" and
  "PV -> 10min -> enrich -> 10min -> new PV -> visit_duration is 20min".
- dbt-ga4, github.com/Velir/dbt-ga4:
  unit_tests/test_stg_ga4__session_conversions_daily.py (commit 2d7b1f1; its earlier form
  is unit_tests/test_stg_ga4__session_conversions.py).

Every scenario goes the way production data goes, without Kafka: Plausible's hits enter
through the collector's enrichment (pipeline.collector.enrichment.Ingestor: the
cookie-free visitor id is the keyed hash of the day's salt, site, IP and user agent, as
Plausible's is); each canonical event is then a message for the consumer's processing path
(pipeline.lake.processing: accept_json, then process per commit cycle in the order the
messages arrive: de-duplication, the real Sessionizer, attribution); the released rows are
written to the lake (pipeline.lake.store.Lake) and the day is built by the real DuckDB
build (pipeline.warehouse.build.build_day). The assertions read the built `sessions` table
and the daily tables of the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.collector.enrichment import Ingestor, RequestContext
from pipeline.collector.plainsignal import parse_plainsignal
from pipeline.config import SessionizationSettings, Settings
from pipeline.events.timestamps import history_window, now_micros, to_micros
from pipeline.lake.processing import ProcessingState, accept_json, process
from pipeline.lake.store import Lake, RejectedPayload
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import Sessionizer, SessionRules
from pipeline.warehouse.build import build_day

Row = dict[str, Any]

# Plausible's tests post to http://some.url with this user agent (session_duration_test.exs).
SITE = "some.url"
PLAUSIBLE_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/70.0.3538.110 Safari/537.36"
)
# ~N[2022-01-01 00:00:00] in session_duration_test.exs; the dbt-ga4 mock is dated 2022-01-01.
DAY = date(2022, 1, 1)
T0 = datetime(2022, 1, 1, tzinfo=UTC)
NEXT_DAY = date(2022, 1, 2)

SESSION_COLUMNS = (
    "visitor_id, session_date, session_start, session_end, duration_s, events, pageviews, "
    "entry_page, exit_page, conversions, conversion_value"
)


# -- the way in: collector, consumer processing, lake, build -------------------------------


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "sites": [SITE, "shop.example"],
        **overrides,
    }
    return Settings(**values)


def hit(ingestor: Ingestor, ip: str, url: str, at: datetime, name: str = "page_view") -> Row:
    """A PlainSignal hit (`POST /api/event`, what t.js sends) from `ip` with Plausible's
    user agent, received at `at`: the canonical event the collector produces for Kafka."""
    request = RequestContext(
        ip=ip,
        user_agent=PLAUSIBLE_UA,
        headers={"user-agent": PLAUSIBLE_UA, "x-forwarded-for": ip},
        received_micros=to_micros(at),
    )
    body = json.dumps({"name": name, "url": url}).encode()
    return ingestor.to_canonical(parse_plainsignal(body), request)


@dataclass(frozen=True)
class Cycle:
    """One consumer commit cycle: the messages it took, in arrival order, and, when the
    partition had gone quiet, the wall clock then (the consumer releases what is older
    than that clock minus the allowed lateness)."""

    messages: Sequence[Row]
    idle_at: datetime | None = None


@dataclass(frozen=True)
class Streamed:
    written: list[int]  # lake rows each step wrote; the last step is the final release
    late: int  # events the sessionizer counted as late


def stream_into_lake(settings: Settings, cycles: Sequence[Cycle]) -> Streamed:
    """Runs the consumer's processing path over `cycles` and writes each release to the
    lake as the consumer does, then makes the final release."""
    rules = SessionRules.from_settings(settings)
    lake = Lake(settings.lake_dir, settings.timezone, rules)
    window = history_window(settings.validation)
    state = ProcessingState(
        Deduplicator(window_micros=settings.sessionization.dedup_window_minutes * 60_000_000),
        Sessionizer(rules),
    )
    now = now_micros()
    late = 0
    written = []
    steps = [*cycles, Cycle(messages=())]
    for number, cycle in enumerate(steps):
        accepted = []
        for offset, message in enumerate(cycle.messages):
            payload = json.dumps(message).encode()
            outcome = accept_json(payload, f"test/0/{number}.{offset}", now=now, window=window)
            assert not isinstance(outcome, RejectedPayload), outcome
            accepted.append(outcome)
        processed = process(
            state,
            accepted,
            ingested_at=datetime.now(UTC),
            final=number == len(steps) - 1,
            cutoff_floor=(
                to_micros(cycle.idle_at) - rules.lateness_micros if cycle.idle_at else None
            ),
        )
        late += processed.late
        written.append(processed.written)
        if processed.rows is not None:
            lake.write_events(processed.rows, f"test-p000-o{number:012d}")
    assert state.sessionizer.pending_events == 0
    return Streamed(written, late)


def sessions_on(settings: Settings, day: date) -> list[Row]:
    """The built `sessions` rows dated `day`, by session start then visitor."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        result = con.execute(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE session_date = ? "
            "ORDER BY session_start, visitor_id",
            [day],
        )
        names = [column[0] for column in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def site_summary(settings: Settings, day: date) -> Row:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        result = con.execute(
            "SELECT sessions, users, pageviews, conversions, conversion_value "
            "FROM daily_site_summary WHERE date = ? AND site_id = ?",
            [day, SITE],
        )
        names = [column[0] for column in result.description]
        (row,) = result.fetchall()
        return dict(zip(names, row, strict=True))


def daily_duration(settings: Settings, day: date) -> tuple[int, float]:
    """(sessions, total_duration_s) of `day` in daily_sessions, over all its rows."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        row = con.execute(
            "SELECT sum(sessions), sum(total_duration_s) FROM daily_sessions "
            "WHERE date = ? AND site_id = ?",
            [day, SITE],
        ).fetchone()
    assert row is not None
    return int(row[0]), float(row[1])


# -- Plausible -----------------------------------------------------------------------------


@pytest.mark.parametrize("arrival", ["within_lateness", "after_release"])
def test_plausible_out_of_order_page_views_make_one_ten_second_session(
    tmp_path: Path, arrival: str
) -> None:
    """Plausible, test/plausible/session/cache_store_test.exs (and store_test.exs),
    "calculates duration correctly for out-of-order events": event1 at now + 10 s reaches
    the session store before event2 at now; `assert session.duration == 10`.

    Here the page view at T0 + 10 s is added to the sessionizer one consumer cycle before
    the one at T0. `within_lateness`: both wait for the watermark and are sessionized in
    time order. `after_release`: the partition went quiet after the first cycle (at
    T0 + 10 s + the allowed lateness + 1 s), so the T0 + 10 s page view was released and
    written, and the T0 one arrives late (behind what was released); at its release it
    still joins the visitor's held session. Plausible asserts the duration only; the two
    page views (and events) follow from its "updates a session" test in the same file."""
    settings = make_settings(tmp_path)
    ingestor = Ingestor(settings)
    later = hit(ingestor, "1.1.1.1", "http://some.url/", T0 + timedelta(seconds=10))
    earlier = hit(ingestor, "1.1.1.1", "http://some.url/", T0)
    assert later["visitor_id"] == earlier["visitor_id"]

    lateness = timedelta(minutes=settings.sessionization.allowed_lateness_minutes)
    quiet = T0 + timedelta(seconds=11) + lateness if arrival == "after_release" else None
    streamed = stream_into_lake(settings, [Cycle([later], idle_at=quiet), Cycle([earlier])])
    build_day(settings, DAY)

    if arrival == "after_release":
        assert (streamed.written, streamed.late) == ([1, 0, 1], 1)
    else:
        assert (streamed.written, streamed.late) == ([0, 0, 2], 0)
    (session,) = sessions_on(settings, DAY)
    assert session["duration_s"] == 10.0
    assert (session["pageviews"], session["events"]) == (2, 2)
    assert (session["session_start"], session["session_end"]) == (T0, T0 + timedelta(seconds=10))
    summary = site_summary(settings, DAY)
    assert (summary["sessions"], summary["users"], summary["pageviews"]) == (1, 1, 2)


def test_plausible_three_visitors_each_keep_their_own_duration(tmp_path: Path) -> None:
    """Plausible, test/plausible_web/controllers/api/session_duration_test.exs,
    "pageview updates the visit_duration only for that session": the same user agent from
    IPs 1.1.1.1, 1.1.1.2 and 1.1.1.3 (three user ids) views http://some.url/first,
    /second and /third at 2022-01-01 00:00:00, then http://some.url (the path "/") at
    00:00:10, 00:00:20 and 00:00:30 respectively; the entry-pages report must hold
    {"/first", 10}, {"/second", 20} and {"/third", 30}.

    sessionflow stores entry and exit pages as the scrubbed page URL, not the path:
    "http://some.url" is stored as "http://some.url/" (path "/"), Plausible's exit page."""
    settings = make_settings(tmp_path)
    ingestor = Ingestor(settings)
    visitors = {"1.1.1.1": ("/first", 10), "1.1.1.2": ("/second", 20), "1.1.1.3": ("/third", 30)}
    firsts = [hit(ingestor, ip, f"http://some.url{page}", T0) for ip, (page, _) in visitors.items()]
    seconds = [
        hit(ingestor, ip, "http://some.url", T0 + timedelta(seconds=after))
        for ip, (_, after) in visitors.items()
    ]
    assert len({event["visitor_id"] for event in firsts}) == 3

    stream_into_lake(settings, [Cycle([*firsts, *seconds])])
    build_day(settings, DAY)

    sessions = sessions_on(settings, DAY)
    by_entry = {row["entry_page"]: row for row in sessions}
    assert {page: row["duration_s"] for page, row in by_entry.items()} == {
        "http://some.url/first": 10.0,
        "http://some.url/second": 20.0,
        "http://some.url/third": 30.0,
    }
    assert [row["exit_page"] for row in sessions] == ["http://some.url/"] * 3
    assert [row["pageviews"] for row in sessions] == [2, 2, 2]
    assert {row["visitor_id"] for row in sessions} == {e["visitor_id"] for e in firsts}
    summary = site_summary(settings, DAY)
    assert (summary["sessions"], summary["users"], summary["pageviews"]) == (3, 3, 6)
    assert daily_duration(settings, DAY) == (3, 60.0)


@pytest.mark.parametrize("engagement_between", [False, True])
def test_plausible_twenty_minutes_between_page_views_is_one_session(
    tmp_path: Path, engagement_between: bool
) -> None:
    """Plausible, test/plausible_web/controllers/api/session_duration_test.exs,
    "PV -> 10min -> enrich -> 10min -> new PV -> visit_duration is 20min": a page view of
    http://some.url at 00:00, an enrich event for it at 00:10, a page view of
    http://some.url/anotherpage at 00:20; the visit duration is 20 * 60 s.

    Plausible's "enrich" (today its "engagement" event) only reports time on the page.
    Without it: two page views 20 minutes apart, within the 30-minute timeout. With it:
    an "engagement" hit at 00:10, which sessionflow counts as an engagement signal: no
    event, no page, and it neither starts nor stretches a session."""
    settings = make_settings(tmp_path)
    ingestor = Ingestor(settings)
    messages = [hit(ingestor, "1.1.1.1", "http://some.url", T0)]
    if engagement_between:
        messages.append(
            hit(ingestor, "1.1.1.1", "http://some.url", T0 + timedelta(minutes=10), "engagement")
        )
    messages.append(
        hit(ingestor, "1.1.1.1", "http://some.url/anotherpage", T0 + timedelta(minutes=20))
    )

    stream_into_lake(settings, [Cycle(messages)])
    build_day(settings, DAY)

    (session,) = sessions_on(settings, DAY)
    assert session["duration_s"] == 1200.0
    assert (session["pageviews"], session["events"]) == (2, 2)
    assert (session["entry_page"], session["exit_page"]) == (
        "http://some.url/",
        "http://some.url/anotherpage",
    )
    assert daily_duration(settings, DAY) == (1, 1200.0)


# -- dbt-ga4 -------------------------------------------------------------------------------


def ga4_event(event_id: str, name: str, at: datetime, session_key: str) -> Row:
    """A canonical event as the GA4 Measurement Protocol endpoint produces it; dbt-ga4's
    session_key is the session of one visitor here, so it stands for the visitor id."""
    return {
        "event_id": event_id,
        "event_name": name,
        "event_ts": at.isoformat(),
        "site_id": SITE,
        "visitor_id": f"visitor-{session_key}",
        "page_url": "https://some.url/",
    }


def session_conversion_events(goal: str) -> list[Row]:
    """dbt-ga4's mock stg_ga4__events, as events with times:

        session_key,session_partition_key,event_name,event_date_dt
        A,A2022-01-01,page_view,2022-01-01
        A,A2022-01-01,my_conversion,2022-01-01
        A,A2022-01-01,my_conversion,2022-01-01
        B,B2022-01-01,my_conversion,2022-01-01
        C,C2022-01-01,some_other_event,2022-01-01
        A,A2022-01-02,my_conversion,2022-01-02

    Session A runs from 23:50 to 00:05 across midnight (within the 30-minute timeout), so
    its last conversion falls on 2022-01-02. The non-standard class of the same test file
    names the event `my-conversion`: `goal`."""
    return [
        ga4_event("a1", "page_view", T0 + timedelta(hours=23, minutes=50), "A"),
        ga4_event("a2", goal, T0 + timedelta(hours=23, minutes=52), "A"),
        ga4_event("a3", goal, T0 + timedelta(hours=23, minutes=54), "A"),
        ga4_event("b1", goal, T0 + timedelta(hours=10), "B"),
        ga4_event("c1", "some_other_event", T0 + timedelta(hours=11), "C"),
        ga4_event("a4", goal, T0 + timedelta(days=1, minutes=5), "A"),
    ]


@pytest.mark.parametrize("goal", ["my_conversion", "my-conversion"])
def test_dbt_ga4_session_conversions_split_at_midnight(tmp_path: Path, goal: str) -> None:
    """dbt-ga4, unit_tests/test_stg_ga4__session_conversions_daily.py, run with
    `conversion_events: ['my_conversion']` (TestUsersNonStandardEventName: 'my-conversion'):

        session_key,session_partition_key,session_partition_date,my_conversion_count
        A,A2022-01-01,2022-01-01,2
        B,B2022-01-01,2022-01-01,1
        C,C2022-01-01,2022-01-01,0
        A,A2022-01-02,2022-01-02,1

    The goal is counted per event (GA4's default for key events), with a value of 1.
    dbt-ga4 counts a session per day partition (session_partition_key): its fourth row is
    session A's part on 2022-01-02. sessionflow has no per-day session partitions; with
    sessionization.split_at_midnight = true the sessionizer makes that part a session of
    its own, dated 2022-01-02, so the fourth row is a second session of visitor A. (GA4
    itself does not restart sessions at midnight: see the next test.)"""
    settings = make_settings(
        tmp_path,
        goals={goal: 1.0},
        goal_counting={goal: "event"},
        sessionization=SessionizationSettings(split_at_midnight=True),
    )
    stream_into_lake(settings, [Cycle(session_conversion_events(goal))])
    build_day(settings, DAY)
    build_day(settings, NEXT_DAY)

    first_day = {row["visitor_id"]: row for row in sessions_on(settings, DAY)}
    second_day = {row["visitor_id"]: row for row in sessions_on(settings, NEXT_DAY)}
    assert {visitor: row["conversions"] for visitor, row in first_day.items()} == {
        "visitor-A": 2,
        "visitor-B": 1,
        "visitor-C": 0,
    }
    assert {visitor: row["conversions"] for visitor, row in second_day.items()} == {"visitor-A": 1}
    # The split: visitor A's 2022-01-02 part is a session of its own, starting at 00:05.
    a_before, a_after = first_day["visitor-A"], second_day["visitor-A"]
    assert a_before["session_end"] == T0 + timedelta(hours=23, minutes=54)
    assert a_after["session_start"] == a_after["session_end"] == T0 + timedelta(days=1, minutes=5)
    assert (a_before["pageviews"], a_after["pageviews"]) == (1, 0)
    assert a_after["conversion_value"] == Decimal(1)
    days = {day: site_summary(settings, day) for day in (DAY, NEXT_DAY)}
    assert {day: (row["sessions"], row["conversions"]) for day, row in days.items()} == {
        DAY: (3, 3),
        NEXT_DAY: (1, 1),
    }


def test_dbt_ga4_session_conversions_without_the_midnight_split(tmp_path: Path) -> None:
    """The same events (dbt-ga4, unit_tests/test_stg_ga4__session_conversions_daily.py)
    with the default sessionization (split_at_midnight = false, as GA4 does): session A
    crosses midnight as one session dated 2022-01-01 with all 3 of its conversions, and
    2022-01-02 has no session. This is where sessionflow's sessions differ from
    dbt-ga4's per-day session partitions."""
    settings = make_settings(
        tmp_path, goals={"my_conversion": 1.0}, goal_counting={"my_conversion": "event"}
    )
    stream_into_lake(settings, [Cycle(session_conversion_events("my_conversion"))])
    build_day(settings, DAY)
    build_day(settings, NEXT_DAY)

    first_day = {row["visitor_id"]: row for row in sessions_on(settings, DAY)}
    assert {visitor: row["conversions"] for visitor, row in first_day.items()} == {
        "visitor-A": 3,
        "visitor-B": 1,
        "visitor-C": 0,
    }
    assert first_day["visitor-A"]["session_end"] == T0 + timedelta(days=1, minutes=5)
    assert sessions_on(settings, NEXT_DAY) == []
