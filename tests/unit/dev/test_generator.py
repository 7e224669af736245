"""The synthetic traffic generator: reproducible, schema-valid, realistic enough to test on."""

from __future__ import annotations

import csv
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jsonschema import Draft202012Validator  # no stubs pinned

import pipeline.dev.generator as generator
from pipeline.dev.generator import (
    COST_COLUMNS,
    GeneratedFiles,
    GeneratorConfig,
    generate_costs,
    generate_events,
    write_dataset,
)
from pipeline.errors import ConfigError
from pipeline.events.schema import load_schema

CONFIG = GeneratorConfig(days=7, start=date(2026, 11, 2), seed=7, events_per_day=2000)
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
TIMEOUT_US = 30 * 60 * 1_000_000


@dataclass
class Dataset:
    files: GeneratedFiles
    lines: list[str]
    events: list[dict[str, Any]]  # every line, duplicates included, in file order
    unique: list[dict[str, Any]]  # first occurrence of each event_id
    sessions: list[list[dict[str, Any]]]  # each in time order
    costs: list[dict[str, str]]


def epoch_us(event_ts: int | str) -> int:
    if isinstance(event_ts, int):
        return event_ts
    delta = datetime.fromisoformat(event_ts) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


def utc_date(event: dict[str, Any]) -> date:
    return datetime.fromtimestamp(epoch_us(event["event_ts"]) / 1e6, UTC).date()


def sessionize(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The design's rules, simply: session_id when there is one, else a 30 min timeout."""
    by_visitor: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_visitor[event["site_id"], event["visitor_id"]].append(event)
    sessions: list[list[dict[str, Any]]] = []
    for visitor_events in by_visitor.values():
        visitor_events.sort(key=lambda e: epoch_us(e["event_ts"]))
        current: list[dict[str, Any]] = []
        for event in visitor_events:
            if current and (
                event.get("session_id") != current[0].get("session_id")
                or epoch_us(event["event_ts"]) - epoch_us(current[-1]["event_ts"]) > TIMEOUT_US
            ):
                sessions.append(current)
                current = []
            current.append(event)
        sessions.append(current)
    return sessions


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    files = write_dataset(CONFIG, tmp_path_factory.mktemp("generated"))
    lines = files.events_path.read_text("utf-8").splitlines()
    events = [json.loads(line) for line in lines]
    seen: set[str] = set()
    unique = []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            unique.append(event)
    with files.costs_path.open(newline="") as f:
        costs = list(csv.DictReader(f))
    return Dataset(files, lines, events, unique, sessionize(unique), costs)


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    config = GeneratorConfig(days=2, start=date(2026, 11, 1), seed=3, events_per_day=1500)
    first = write_dataset(config, tmp_path / "a")
    second = write_dataset(config, tmp_path / "b")
    assert first.events_path.read_bytes() == second.events_path.read_bytes()
    assert first.costs_path.read_bytes() == second.costs_path.read_bytes()
    assert (first.events, first.duplicates, first.late) == (
        second.events,
        second.duplicates,
        second.late,
    )


def test_generate_events_yields_what_the_file_holds(data: Dataset) -> None:
    assert list(generate_events(CONFIG)) == data.events
    assert generate_costs(CONFIG) == generate_costs(CONFIG)


def test_a_different_seed_gives_different_traffic(tmp_path: Path) -> None:
    config = GeneratorConfig(days=1, start=date(2026, 11, 1), seed=1, events_per_day=1000)
    other = GeneratorConfig(days=1, start=date(2026, 11, 1), seed=2, events_per_day=1000)
    a, b = write_dataset(config, tmp_path / "a"), write_dataset(other, tmp_path / "b")
    assert a.events_path.read_bytes() != b.events_path.read_bytes()
    assert a.costs_path.read_bytes() != b.costs_path.read_bytes()


def test_generation_streams() -> None:
    """A year at a million a day would take minutes: the first events come at once."""
    config = GeneratorConfig(days=365, start=date(2026, 1, 1), events_per_day=100_000)
    first = list(itertools.islice(generate_events(config), 5))
    assert len(first) == 5


def test_every_event_matches_the_canonical_schema(data: Dataset) -> None:
    schema = load_schema("canonical_event")
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for event in data.events[::3]:  # a few thousand, every kind of event among them
        validator.validate(event)
    assert {e["event_name"] for e in data.events[::3]} == {"page_view", "sign_up", "purchase"}


def test_lines_are_compact_canonical_json(data: Dataset) -> None:
    for line, event in zip(data.lines, data.events, strict=True):
        assert json.dumps(event, separators=(",", ":")) == line


def test_timestamps_come_in_every_allowed_style(data: Dataset) -> None:
    styles = Counter(
        "int" if isinstance(e["event_ts"], int) else e["event_ts"][26:] for e in data.unique
    )
    assert styles["Z"] > 0.85 * len(data.unique)
    assert styles["int"] > 0
    assert {"+02:00", "+01:00", "-05:00", "+05:30"} <= set(styles)
    for event in data.unique:
        if isinstance(event["event_ts"], str):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)",
                                event["event_ts"])  # fmt: skip


def test_events_per_day_stay_near_the_target(data: Dataset) -> None:
    per_day = Counter(utc_date(e) for e in data.unique)
    days = [CONFIG.start + timedelta(days=i) for i in range(CONFIG.days)]
    for day in days:
        assert 0.65 * CONFIG.events_per_day < per_day[day] < 1.35 * CONFIG.events_per_day
    mean = sum(per_day[day] for day in days) / CONFIG.days
    assert abs(mean - CONFIG.events_per_day) < 0.1 * CONFIG.events_per_day
    # Nights are quiet, evenings busy.
    hours = Counter(epoch_us(e["event_ts"]) // 3_600_000_000 % 24 for e in data.unique)
    assert hours[3] * 5 < hours[20]


def test_duplicates_and_late_events_are_there_and_counted(data: Dataset) -> None:
    files = data.files
    assert files.events == len(data.lines)
    assert files.duplicates == len(data.events) - len(data.unique)
    assert 0.003 < files.duplicates / files.events < 0.015
    assert 0.008 < files.late / files.events < 0.025

    first_seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for position, event in enumerate(data.events):
        if event["event_id"] in first_seen:  # an exact copy, later in the file
            earlier, original = first_seen[event["event_id"]]
            assert original == event
            assert position > earlier
        else:
            first_seen[event["event_id"]] = (position, event)

    # Late events come after events that happened later than they did.
    latest, behind = 0, 0
    for event in data.unique:
        ts = epoch_us(event["event_ts"])
        behind += ts < latest
        latest = max(latest, ts)
    assert 0.8 * files.late <= behind <= files.late


def test_both_id_styles_are_present(data: Dataset) -> None:
    ga4 = [s for s in data.sessions if "session_id" in s[0]]
    assert 0.3 < len(ga4) / len(data.sessions) < 0.5
    for session in data.sessions:
        assert re.fullmatch(r"[0-9a-f]{32}", session[0]["visitor_id"])
        ids = {e.get("session_id") for e in session}
        assert len(ids) == 1  # on every event of the session or on none
        if session in ga4:  # ga_session_id: the session start in epoch seconds
            assert session[0]["session_id"] == str(epoch_us(session[0]["event_ts"]) // 1_000_000)
    users = {e["user_id"] for e in data.unique if e.get("user_id")}
    assert users
    assert all(re.fullmatch(r"[0-9a-f]{64}", u) for u in users)
    assert all("session_id" in e for e in data.unique if e.get("user_id"))


def test_visitors_come_back(data: Dataset) -> None:
    days_by_visitor: dict[str, set[date]] = defaultdict(set)
    sessions_by_visitor: Counter[str] = Counter()
    for session in data.sessions:
        visitor = session[0]["visitor_id"]
        days_by_visitor[visitor].add(utc_date(session[0]))
        sessions_by_visitor[visitor] += 1
    stable = {s[0]["visitor_id"] for s in data.sessions if "session_id" in s[0]}
    rotating = set(days_by_visitor) - stable
    # GA4-style ids come back on other days; cookie-free ones rotate every day...
    assert sum(len(days_by_visitor[v]) > 1 for v in stable) > 50
    assert all(len(days_by_visitor[v]) == 1 for v in rotating)
    # ...but their visitors still come back later the same day.
    assert sum(sessions_by_visitor[v] > 1 for v in rotating) > 50


def test_sessions_look_like_sessions(data: Dataset) -> None:
    bounces = 0
    for session in data.sessions:
        times = [epoch_us(e["event_ts"]) for e in session]
        assert all(b - a <= TIMEOUT_US for a, b in itertools.pairwise(times))
        views = [e for e in session if e["event_name"] == "page_view"]
        bounces += len(views) == 1
        assert all(e["engagement_time_ms"] >= 0 for e in views)
        landing = session[0]
        assert landing["event_name"] == "page_view"
        for event in session[1:]:  # campaign fields and click ids: landing page only
            assert not any(k in event for k in (*UTM, "click_id_type"))
        query = parse_qs(urlsplit(landing["page_url"]).query)
        assert {k: v[0] for k, v in query.items()} == {k: landing[k] for k in UTM if k in landing}
        for event in session:
            assert urlsplit(event["page_url"]).netloc == event["site_id"]
    assert 0.35 < bounces / len(data.sessions) < 0.55
    assert 2.0 < len(data.unique) / len(data.sessions) < 3.0


def test_traffic_mixes_devices_countries_and_channels(data: Dataset) -> None:
    devices = Counter(s[0]["device_category"] for s in data.sessions)
    assert devices["mobile"] > devices["desktop"] > devices["tablet"] > 0
    assert len({s[0]["country"] for s in data.sessions}) == 10
    assert all(s[0]["os"] in {"iOS", "Android"} for s in data.sessions
               if s[0]["device_category"] == "mobile")  # fmt: skip
    referrers = {s[0].get("page_referrer") for s in data.sessions if "utm_source" not in s[0]}
    assert {None, "https://www.google.com/", "https://t.co/"} <= referrers


def test_paid_search_and_social_landings_carry_click_ids(data: Dataset) -> None:
    clicks = Counter(
        (s[0].get("utm_source"), s[0].get("click_id_type"))
        for s in data.sessions
        if "click_id_type" in s[0]
    )
    assert clicks[("google", "gclid")] > 0
    assert clicks[("bing", "msclkid")] > 0
    assert clicks[("facebook", "fbclid")] > 0
    assert None not in {source for source, _ in clicks}  # never without utm fields


def test_purchases_carry_value_currency_and_a_transaction(data: Dataset) -> None:
    purchases = [e for e in data.unique if e["event_name"] == "purchase"]
    assert 0.02 < len(purchases) / len(data.sessions) < 0.04
    for purchase in purchases:
        assert 15 <= purchase["value"] <= 400
        assert round(purchase["value"], 2) == purchase["value"]
    currencies = Counter(p["currency"] for p in purchases)
    assert currencies["USD"] > 0.9 * len(purchases)
    assert currencies["EUR"] > 0
    assert len({p["transaction_id"] for p in purchases}) == len(purchases)
    sign_ups = [e for e in data.unique if e["event_name"] == "sign_up"]
    assert sign_ups
    assert all(e.get("value") is None and "transaction_id" not in e for e in sign_ups)


def test_channels_convert_differently(data: Dataset) -> None:
    rate: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for session in data.sessions:
        medium = session[0].get("utm_medium", "none")
        rate[medium][0] += 1
        rate[medium][1] += any(e["event_name"] == "purchase" for e in session)
    share = {medium: bought / sessions for medium, (sessions, bought) in rate.items()}
    assert share["email"] > share["none"] > share["display"]


def test_costs_join_to_paid_traffic(data: Dataset) -> None:
    paid = {
        (s[0]["utm_source"], s[0]["utm_medium"], s[0]["utm_campaign"])
        for s in data.sessions
        if "utm_source" in s[0]
    }
    costed = {(r["source"], r["medium"], r["campaign"]) for r in data.costs}
    assert costed == paid  # every campaign with traffic has costs, and no cost is orphaned
    days = {r["date"] for r in data.costs}
    assert days == {(CONFIG.start + timedelta(days=i)).isoformat() for i in range(CONFIG.days)}
    rows = Counter((r["date"], r["source"], r["medium"], r["campaign"]) for r in data.costs)
    assert len(rows) == len(days) * len(paid)
    assert set(rows.values()) == {1}
    # Unpaid traffic (organic, referral, direct) carries no utm and gets no cost.
    assert {r["medium"] for r in data.costs} == {
        "cpc", "paid_social", "email", "display", "affiliate"
    }  # fmt: skip
    for row in data.costs:
        assert re.fullmatch(r"\d+\.\d\d", row["cost"])
        assert int(row["clicks"]) > 0
        assert int(row["impressions"]) > int(row["clicks"])
        assert row["currency"] == CONFIG.currency
        assert row["site_id"] == "shop.example"


def test_costs_follow_the_traffic_they_buy(data: Dataset) -> None:
    """Clicks run a little above sessions: some clicks never load the tracker."""
    sessions = Counter(s[0]["utm_campaign"] for s in data.sessions if "utm_source" in s[0])
    clicks = Counter[str]()
    for row in data.costs:
        clicks[row["campaign"]] += int(row["clicks"])
    for campaign in ("generic_search", "weekly_digest", "prospecting_lookalike"):
        assert 0.9 < clicks[campaign] / sessions[campaign] < 1.5


def test_write_dataset_writes_whole_files(data: Dataset) -> None:
    files = data.files
    assert files.events_path.name == "events.jsonl"
    assert files.costs_path.name == "costs.csv"
    header = files.costs_path.read_text("utf-8").splitlines()[0]
    assert header == ",".join(COST_COLUMNS)
    assert files.cost_rows == len(data.costs)
    assert files.events_path.read_bytes().endswith(b"}\n")
    assert sorted(p.name for p in files.events_path.parent.iterdir()) == [
        "costs.csv",
        "events.jsonl",
    ]


def test_a_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Any) -> Iterator[str]:
        yield '{"event_id":"x"}'
        raise OSError("disk full")

    monkeypatch.setattr(generator._Traffic, "lines", broken)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(CONFIG, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_several_sites_and_another_currency(tmp_path: Path) -> None:
    config = GeneratorConfig(
        days=2,
        start=date(2026, 11, 1),
        events_per_day=3000,
        sites=("shop.example", "blog.example"),
        currency="EUR",
    )
    files = write_dataset(config, tmp_path)
    events = [json.loads(line) for line in files.events_path.read_text("utf-8").splitlines()]
    sites = Counter(e["site_id"] for e in events)
    assert sites["shop.example"] > sites["blog.example"] > 0
    currencies = Counter(e["currency"] for e in events if e["event_name"] == "purchase")
    assert currencies["EUR"] > currencies["USD"] > 0
    with files.costs_path.open(newline="") as f:
        costs = list(csv.DictReader(f))
    assert {r["site_id"] for r in costs} == {"shop.example", "blog.example"}
    assert {r["currency"] for r in costs} == {"EUR"}


def test_purchases_in_one_currency_when_asked(tmp_path: Path) -> None:
    """The demo's traffic on a config without the second currency's rate: every purchase
    is in `currency`; the same seed otherwise pays some in EUR."""
    base = GeneratorConfig(days=2, start=date(2026, 11, 1), seed=3, events_per_day=3000)
    currencies: dict[bool, Counter[str]] = {}
    for mixed in (True, False):
        config = replace(base, other_currency_purchases=mixed)
        files = write_dataset(config, tmp_path / str(mixed))
        events = [json.loads(line) for line in files.events_path.read_text("utf-8").splitlines()]
        currencies[mixed] = Counter(e["currency"] for e in events if e["event_name"] == "purchase")
    assert currencies[True]["EUR"] > 0
    assert set(currencies[False]) == {"USD"}
    assert currencies[False].total() == currencies[True].total()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"days": 0}, "days"),
        ({"events_per_day": -1}, "events_per_day"),
        ({"sites": ()}, "sites"),
        ({"sites": ("https://shop.example/",)}, "sites"),
        ({"currency": "usd"}, "currency"),
    ],
)
def test_bad_configs_are_refused(changes: dict[str, Any], message: str) -> None:
    settings: dict[str, Any] = {"days": 1, "start": date(2026, 11, 1), **changes}
    with pytest.raises(ConfigError, match=message):
        GeneratorConfig(**settings)
