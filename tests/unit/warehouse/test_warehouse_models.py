"""The warehouse models (pipeline/warehouse/sql/ run by pipeline/warehouse/build.py), no broker needed.

Events reach the lake through `sessionflow import` (pipeline.lake.importer), costs the
marketing_costs table through its DDL. The key test recomputes the daily tables from the
lake's Parquet with plain Python (pyarrow to read, then dicts and loops; no SQL) and
expects the SQL's numbers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.dev.generator import COST_COLUMNS, GeneratorConfig, generate_costs, write_dataset
from pipeline.events.schema import lake_arrow_schema
from pipeline.events.timestamps import parse_event_ts
from pipeline.lake.importer import import_file
from pipeline.sessions.channels import default_channel_group, source_medium
from pipeline.warehouse.build import (
    DayBuild,
    build_day,
    lake_reads,
    model_parameters,
    prepare_connection,
    run_day_models,
    store_day,
)
from pipeline.warehouse.models import run_sql_model
from pipeline.warehouse.publish import OUTPUTS
from pipeline.warehouse.query import run_query

Row = dict[str, Any]
CENT = Decimal("0.0001")
SITES = ("shop.example", "blog.example")
TIMEZONE = "America/New_York"
START = date(2026, 10, 31)
DAY = date(2026, 11, 1)  # New York leaves daylight saving time: a 25-hour day
RATES = {"EUR": 1.25}  # exact in binary: SQL's rounding to 4 decimals loses nothing
GOALS = {"sign_up": 5.0, "download": 1.5}
GOAL_COUNTING: dict[str, Any] = {"sign_up": "session", "download": "event"}
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# The columns each output table promises (docs/tables.md), in their order.
SIGNALS = {"user_engagement", "engagement"}  # engagement time only, not events
NOT_IN_MART = {"duration_us", "user_key"}  # recomputed per session, not columns of `sessions`
DOCUMENTED_COLUMNS = {
    "sessions": "session_id site_id visitor_id session_date session_start session_end "
    "duration_s events pageviews engaged bounce entry_page exit_page source medium campaign "
    "channel_group device_category country conversions revenue conversion_value "
    "engagement_time_s refunds net_revenue currency",
    "daily_sessions": "date site_id channel_group source medium campaign device_category "
    "country sessions users engaged_sessions pageviews total_duration_s conversions revenue "
    "conversion_value session_value revenue_per_session engagement_rate bounce_rate "
    "avg_session_duration_s pages_per_session sessions_per_user engagement_time_s "
    "avg_engagement_time_s refunds net_revenue currency",
    "daily_cost_per_session": "date site_id source medium campaign cost sessions "
    "cost_per_session revenue conversion_value roas cost_per_conversion currency",
    "daily_site_summary": "date site_id sessions users pageviews engaged_sessions conversions "
    "revenue conversion_value cost cost_per_session session_value revenue_per_session "
    "sessions_per_user bounce_rate engagement_time_s avg_engagement_time_s refunds net_revenue "
    "currency reporting_currency revenue_reporting conversion_value_reporting cost_reporting "
    "net_revenue_reporting",
    "weekly_sessions_per_user": "week site_id sessions users sessions_per_user",
    "monthly_sessions_per_user": "month site_id sessions users sessions_per_user",
}


# -- building lakes and cost tables -------------------------------------------------------


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": data_dir, "sites": list(SITES), **overrides}
    return Settings(**values)


def import_events(settings: Settings, events: Iterable[Row], path: Path) -> None:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    report = import_file(settings, path, lambda _: None)
    assert report.rejected == 0, report.reject_lines


def campaign_of(value: str | None) -> str:
    """Campaigns match trimmed and in lower case, a missing one as "(not set)"."""
    return (value or "").strip().lower() or "(not set)"


def load_costs(settings: Settings, rows: Iterable[Row]) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        run_sql_model(con, "publish/marketing_costs")
        con.executemany(
            "INSERT INTO marketing_costs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
            [
                [
                    Decimal(str(row["cost"]))
                    if c == "cost"
                    else campaign_of(row.get(c))
                    if c == "campaign"
                    else row.get(c)
                    for c in COST_COLUMNS
                ]
                for row in rows
            ],
        )


def event(
    event_id: str, name: str, ts: datetime, visitor: str, site: str = "shop.example", **fields: Any
) -> Row:
    return {
        "event_id": event_id,
        "event_name": name,
        "event_ts": ts.isoformat(),
        "site_id": site,
        "visitor_id": visitor,
        "page_url": f"https://{site}/",
        **fields,
    }


def cost(day: date, site: str, source: str, medium: str, campaign: str | None, amount: str,
         currency: str = "USD", ad_group: str | None = None) -> Row:  # fmt: skip
    return {"date": day, "site_id": site, "source": source, "medium": medium,
            "campaign": campaign, "ad_group": ad_group, "cost": amount, "currency": currency}  # fmt: skip


def warehouse_rows(settings: Settings, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def rows_by(table: list[Row], *keys: str) -> dict[tuple[Any, ...], Row]:
    keyed = {tuple(row[k] for k in keys): row for row in table}
    assert len(keyed) == len(table), f"{keys} is not the grain"
    return keyed


def mart(settings: Settings, table: str, day: date = DAY) -> list[Row]:
    """A day's file of a mart, with its partition column (in the path only) put back."""
    rows: list[Row] = pq.read_table(
        settings.marts_dir / table / f"date={day}" / "data.parquet"
    ).to_pylist()
    return rows if table == "sessions" else [{"date": day, **row} for row in rows]


@dataclass
class BareRun:
    """The day models run bare on an in-memory DuckDB: TEMP tables, no warehouse."""

    con: duckdb.DuckDBPyConnection

    def rows(self, stage: str) -> list[Row]:
        rows: list[Row] = self.con.table(stage).to_arrow_table().to_pylist()
        return rows


BareRunner = Callable[[Settings], BareRun]


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[BareRunner]:
    """Runs DAY's models bare, as build_day does but without touching a warehouse."""

    def run(settings: Settings) -> BareRun:
        con = duckdb.connect()
        opened.append(con)
        prepare_connection(con, settings)
        scratch = tmp_path / "scratch"
        run_day_models(con, model_parameters(settings, DAY, lake_reads(settings, DAY), scratch))
        return BareRun(con)

    opened: list[duckdb.DuckDBPyConnection] = []
    yield run
    for con in opened:
        con.close()


# -- the independent recomputation ---------------------------------------------------------


def reporting_amount(value: float | None, currency: str | None) -> Decimal | None:
    """The design's currency rule, in Decimal: None when unconverted (or no value)."""
    if value is None:
        return None
    if currency in (None, "USD"):
        return Decimal(str(value)).quantize(CENT)
    if currency in RATES:
        return (Decimal(str(value)) * Decimal(str(RATES[currency]))).quantize(CENT, ROUND_HALF_UP)
    return None


def ratio(numerator: Any, denominator: Any) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def assert_same(actual: Row, expected: Row, where: object) -> None:
    """Every expected field: floats approximately, everything else exactly."""
    for name, want in expected.items():
        got = actual[name]
        if isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-12), (where, name)
        else:
            assert got == want, (where, name, got, want)


@dataclass
class Recomputed:
    sessions: dict[str, Row]
    unconverted_values: int
    dropped_purchases: int  # repeated transaction ids
    reattributed: int  # direct sessions credited to an earlier non-direct one
    daily_sessions: dict[tuple[Any, ...], Row] = field(default_factory=dict)
    cost_per_session: dict[tuple[Any, ...], Row] = field(default_factory=dict)
    site_summary: dict[tuple[Any, ...], Row] = field(default_factory=dict)


def lake_events(settings: Settings) -> list[Row]:
    """Every lake event once per site: the earliest ingested copy (then file, then row)."""
    best: dict[tuple[str, str], tuple[Any, ...]] = {}
    for path in sorted((settings.lake_dir / "events").glob("event_date=*/*.parquet")):
        for index, row in enumerate(pq.ParquetFile(path).read().to_pylist()):
            rank = (row["ingested_at"], str(path), index)
            key = (row["site_id"], row["event_id"])
            if key not in best or rank < best[key][:3]:
                best[key] = (*rank, row)
    return [entry[3] for entry in best.values()]


def in_time_order(events: Iterable[Row]) -> list[Row]:
    return sorted(events, key=lambda e: (e["event_ts"], e["event_id"]))


@dataclass
class LakeSession:
    """A session of the lake as the rules read it, before any date is chosen."""

    events: list[Row]  # in time order, engagement signals included

    @property
    def real(self) -> list[Row]:
        return [e for e in self.events if e["event_name"] not in SIGNALS]

    @property
    def start(self) -> datetime:
        ts: datetime = self.real[0]["event_ts"]
        return ts

    def attribution(self) -> Row:
        """Source, medium, campaign and channel from its first event, derived again."""
        first = self.real[0]
        referrer = first["page_referrer"]
        source, medium = source_medium(
            first["utm_source"], first["utm_medium"], first["click_id_type"],
            urlsplit(referrer).hostname if referrer else None, first["site_id"],
        )  # fmt: skip
        source, medium = source.strip().lower(), medium.strip().lower()
        campaign = campaign_of(first["utm_campaign"])
        return {"source": source, "medium": medium, "campaign": campaign,
                "channel_group": default_channel_group(source, medium, campaign)}  # fmt: skip

    def user_id(self) -> str | None:
        return next((e["user_id"] for e in self.events if e["user_id"] is not None), None)


def lake_sessions(settings: Settings) -> dict[str, LakeSession]:
    by_session: dict[str, list[Row]] = defaultdict(list)
    for row in lake_events(settings):
        by_session[row["session_id"]].append(row)
    return {
        session_id: LakeSession(in_time_order(events))
        for session_id, events in by_session.items()
        if any(e["event_name"] not in SIGNALS for e in events)
    }


def stable_visitors(sessions: Iterable[LakeSession]) -> set[tuple[str, str]]:
    """(site, visitor) whose id is a stable client id: sent with the 'client' scope, or
    with a client session id and no scope."""
    return {
        (e["site_id"], e["visitor_id"])
        for session in sessions
        for e in session.events
        if e["visitor_scope"] == "client"
        or (e["visitor_scope"] is None and e["client_session_id"] is not None)
    }


def last_non_direct(
    session: LakeSession, sessions: Iterable[LakeSession], lookback: timedelta
) -> Row | None:
    """The attribution of the same user's latest non-direct session that started in the
    look-back before `session` (the user: its user_id, else its visitor id)."""

    def user(s: LakeSession) -> tuple[str, str]:
        return s.real[0]["site_id"], s.user_id() or s.real[0]["visitor_id"]

    earlier = [
        s for s in sessions
        if user(s) == user(session) and session.start - lookback <= s.start < session.start
        and s.attribution()["channel_group"] != "Direct"
    ]  # fmt: skip
    return max(earlier, key=lambda s: s.start).attribution() if earlier else None


def recompute(settings: Settings, day: date, costs: list[Row]) -> Recomputed:
    zone = ZoneInfo(settings.timezone)
    every_session = lake_sessions(settings)
    cut_after = timedelta(days=settings.flows.max_session_days)
    todays: dict[str, LakeSession] = {}
    for session_id, session in every_session.items():
        if session.start.astimezone(zone).date() == day:
            # Events more than max_session_days after the first are cut.
            kept = [e for e in session.events if e["event_ts"] <= session.start + cut_after]
            todays[session_id] = LakeSession(kept)

    # A transaction id counts once per site, in its first purchase anywhere in the lake
    # (every day of this data set is within the build's window).
    every_event = in_time_order(e for s in every_session.values() for e in s.events)
    counted: dict[tuple[str, str], Row] = {}
    for e in every_event:
        key = (e["site_id"], e["transaction_id"])
        if e["event_name"] == "purchase" and e["transaction_id"] is not None:
            counted.setdefault(key, e)
    counted_ids = {(e["site_id"], e["event_id"]) for e in counted.values()}
    purchases = [e for s in todays.values() for e in s.events if e["event_name"] == "purchase"]

    stable = stable_visitors(every_session.values())
    lookback = timedelta(days=settings.attribution.lookback_days)
    sessions: dict[str, Row] = {}
    unconverted, reattributed = 0, 0
    for session_id, session in todays.items():
        events, real = session.events, session.real
        first, last = real[0], real[-1]
        pages = [e for e in events if e["event_name"] == "page_view"]
        engagement = [
            e["engagement_time_ms"] for e in events if e["engagement_time_ms"] is not None
        ]
        attribution = session.attribution()
        if attribution["channel_group"] == "Direct":
            earlier = last_non_direct(session, every_session.values(), lookback)
            if earlier is not None:
                attribution, reattributed = earlier, reattributed + 1
        conversions, revenue, goal_value, refunds = 0, Decimal(0), Decimal(0), Decimal(0)
        goal_values: dict[str, list[Decimal | None]] = defaultdict(list)
        for e in events:
            amount = reporting_amount(e["value"], e["currency"])
            unconverted += e["value"] is not None and amount is None and e["currency"] is not None
            if e["event_name"] == "purchase":
                if e["transaction_id"] is None or (e["site_id"], e["event_id"]) in counted_ids:
                    conversions += 1
                    revenue += amount or 0
            elif e["event_name"] == "refund":
                if e["value"] is None:  # a whole transaction returned
                    purchase = counted.get((e["site_id"], e["transaction_id"]))
                    amount = (
                        None
                        if purchase is None
                        else reporting_amount(purchase["value"], purchase["currency"])
                    )
                refunds += amount or 0
            elif e["event_name"] in GOALS:
                # A value sent with the event wins over the goal's default.
                own = amount if e["value"] is not None else Decimal(str(GOALS[e["event_name"]]))
                goal_values[e["event_name"]].append(own)
        for goal, values in goal_values.items():
            counted_values = values[:1] if GOAL_COUNTING[goal] == "session" else values
            conversions += len(counted_values)
            goal_value += sum((v for v in counted_values if v is not None), Decimal(0))
        duration_us = (last["event_ts"] - first["event_ts"]) // timedelta(microseconds=1)
        # GA4: > 10 s of engagement time (of duration when none was sent), a key event,
        # or two page views.
        long_enough = sum(engagement) > 10_000 if engagement else duration_us > 10_000_000
        engaged = long_enough or conversions >= 1 or len(pages) >= 2
        visitor = first["visitor_id"]
        sessions[session_id] = {
            "site_id": first["site_id"], "visitor_id": visitor,
            "session_date": day, "session_start": first["event_ts"],
            "session_end": last["event_ts"], "duration_s": duration_us / 1e6,
            "duration_us": duration_us, "events": len(real), "pageviews": len(pages),
            "engaged": engaged, "bounce": not engaged,
            "entry_page": pages[0]["page_url"] if pages else None,
            "exit_page": pages[-1]["page_url"] if pages else None,
            **attribution,
            "device_category": first["device_category"], "country": first["country"],
            "conversions": conversions, "revenue": revenue, "conversion_value": goal_value,
            "engagement_time_s": sum(engagement) / 1000,
            "refunds": refunds, "net_revenue": revenue - refunds,
            "user_key": session.user_id()
            or (visitor if (first["site_id"], visitor) in stable else None),
        }  # fmt: skip

    result = Recomputed(
        sessions, unconverted, len(purchases) - sum(
            (e["site_id"], e["event_id"]) in counted_ids or e["transaction_id"] is None
            for e in purchases
        ), reattributed
    )  # fmt: skip
    result.daily_sessions = _daily_sessions(day, sessions)
    result.cost_per_session, result.site_summary = _with_costs(day, sessions, costs)
    return result


def _totals(sessions: Iterable[Row]) -> Row:
    group = list(sessions)
    return {
        "sessions": len(group),
        "users": len({s["visitor_id"] for s in group}),
        "engaged_sessions": sum(s["engaged"] for s in group),
        "pageviews": sum(s["pageviews"] for s in group),
        "conversions": sum(s["conversions"] for s in group),
        "revenue": sum((s["revenue"] for s in group), Decimal(0)),
        "conversion_value": sum((s["conversion_value"] for s in group), Decimal(0)),
        "duration_us": sum(s["duration_us"] for s in group),
        "engagement_time_s": sum(s["engagement_time_s"] for s in group),
        "refunds": sum((s["refunds"] for s in group), Decimal(0)),
        "net_revenue": sum((s["net_revenue"] for s in group), Decimal(0)),
    }


def _daily_sessions(day: date, sessions: dict[str, Row]) -> dict[tuple[Any, ...], Row]:
    keys = ("site_id", "channel_group", "source", "medium", "campaign", "device_category",
            "country")  # fmt: skip
    groups: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for session in sessions.values():
        groups[tuple(session[k] for k in keys)].append(session)
    expected = {}
    for key, group in groups.items():
        t = _totals(group)
        n = t["sessions"]
        expected[key] = {
            "date": day, **dict(zip(keys, key, strict=True)),
            **{k: v for k, v in t.items() if k != "duration_us"},
            "total_duration_s": t["duration_us"] / 1e6,
            "session_value": ratio(t["revenue"] + t["conversion_value"], n),
            "revenue_per_session": ratio(t["revenue"], n),
            "engagement_rate": ratio(t["engaged_sessions"], n),
            "bounce_rate": 1 - t["engaged_sessions"] / n,
            "avg_session_duration_s": t["duration_us"] / 1e6 / n,
            "pages_per_session": ratio(t["pageviews"], n),
            "sessions_per_user": ratio(n, t["users"]),
            "avg_engagement_time_s": ratio(t["engagement_time_s"], n),
        }  # fmt: skip
    return expected


def _with_costs(
    day: date, sessions: dict[str, Row], costs: list[Row]
) -> tuple[dict[tuple[Any, ...], Row], dict[tuple[Any, ...], Row]]:
    spend: dict[tuple[Any, ...], Decimal] = {}
    for row in costs:
        if row["date"] != day:
            continue
        key = (row["site_id"], row["source"], row["medium"], campaign_of(row["campaign"]))
        amount = reporting_amount(float(row["cost"]), row["currency"])
        spend[key] = spend.get(key, Decimal(0)) + (amount or 0)

    by_campaign: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    by_site: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for s in sessions.values():
        by_campaign[(s["site_id"], s["source"], s["medium"], s["campaign"])].append(s)
        by_site[(s["site_id"],)].append(s)
    site_spend: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for key, amount in spend.items():
        site_spend[key[:1]] += amount

    per_campaign = {}
    for key in by_campaign.keys() | spend.keys():
        t = _totals(by_campaign.get(key, []))
        c = spend.get(key, Decimal(0))
        per_campaign[key] = {
            "date": day, "cost": c, "sessions": t["sessions"],
            "cost_per_session": ratio(c, t["sessions"]), "revenue": t["revenue"],
            "conversion_value": t["conversion_value"], "roas": ratio(t["revenue"], c),
            "cost_per_conversion": ratio(c, t["conversions"]),
        }  # fmt: skip
    per_site = {}
    for key in by_site.keys() | site_spend.keys():
        t = _totals(by_site.get(key, []))
        c = site_spend.get(key, Decimal(0))
        n = t["sessions"]
        per_site[key] = {
            "date": day, **{k: v for k, v in t.items() if k != "duration_us"}, "cost": c,
            "cost_per_session": ratio(c, n),
            "session_value": ratio(t["revenue"] + t["conversion_value"], n),
            "revenue_per_session": ratio(t["revenue"], n), "sessions_per_user": ratio(n, t["users"]),
            "bounce_rate": None if n == 0 else 1 - t["engaged_sessions"] / n,
            "avg_engagement_time_s": ratio(t["engagement_time_s"], n),
        }  # fmt: skip
    return per_campaign, per_site


# -- the generated data set, with traps ---------------------------------------------------


def _at(e: Row, delta: timedelta, event_id: str, name: str) -> Row:
    """A new event of the same session, `delta` after `e`."""
    shared = ("site_id", "visitor_id", "session_id", "user_id", "page_url", "device_category",
              "browser", "os", "country")  # fmt: skip
    ts = parse_event_ts(e["event_ts"]) + delta // timedelta(microseconds=1)
    return {"event_id": event_id, "event_name": name, "event_ts": ts,
            **{k: e[k] for k in shared if k in e}}  # fmt: skip


def with_traps(generated: list[Row]) -> list[Row]:
    """Generated events plus: other and unknown currencies, repeated transaction ids,
    goals hit more than once, sessions across local midnight, a paid click without utm."""
    events = list({e["event_id"]: e for e in reversed(generated)}.values())[::-1]
    extra: list[Row] = []
    purchases = [e for e in events if e["event_name"] == "purchase"]
    for i, p in enumerate(purchases):
        if i % 6 == 0:
            p["currency"] = "EUR"
        elif i % 6 == 1:
            p["currency"] = "GBP"  # no rate: flagged, kept out of revenue
        elif i % 6 == 2:
            p.pop("currency")  # none given: counts as is
        elif i % 6 == 3:
            p["transaction_id"] = purchases[i - 3]["transaction_id"]
        if i % 5 == 4:  # the same purchase sent again by the client
            extra.append({**_at(p, timedelta(seconds=2), f"resend-{i}", "purchase"),
                          "value": p["value"], "transaction_id": p["transaction_id"]})  # fmt: skip
    for i, e in enumerate(e for e in events if e["event_name"] == "sign_up"):
        if i % 2 == 0:  # counted once per session
            extra.append(_at(e, timedelta(milliseconds=500), f"signup-again-{i}", "sign_up"))
    for i, e in enumerate(e for e in events if e["event_name"] == "page_view"):
        if i % 4 == 0:  # counted per event
            extra.append(_at(e, timedelta(milliseconds=200), f"download-a-{i}", "download"))
            extra.append(_at(e, timedelta(milliseconds=400), f"download-b-{i}", "download"))

    at = datetime.fromisoformat
    extra += [
        # 23:59:40 to 00:00:20 New York time (EDT): dated October 31st.
        event("mid-a1", "page_view", at("2026-11-01T03:59:40+00:00"), "midnight-a"),
        event("mid-a2", "page_view", at("2026-11-01T04:00:20+00:00"), "midnight-a"),
        # 23:59:50 to 00:00:35 (EST), a purchase after midnight: dated November 1st.
        event("mid-b1", "page_view", at("2026-11-02T04:59:50+00:00"), "midnight-b",
              session_id="ga-midnight"),
        event("mid-b2", "page_view", at("2026-11-02T05:00:30+00:00"), "midnight-b",
              session_id="ga-midnight"),
        event("mid-b3", "purchase", at("2026-11-02T05:00:35+00:00"), "midnight-b",
              session_id="ga-midnight", value=80.0, currency="USD", transaction_id="T-MID"),
        # Auto-tagged click without utm fields: google / cpc, no campaign.
        event("gclid-1", "page_view", at("2026-11-01T15:00:00+00:00"), "gclid-visitor",
              click_id_type="gclid", page_referrer="https://www.google.com/"),
        # A whole transaction refunded (no value), and part of another, in euros.
        event("refund-all", "refund", at("2026-11-01T18:00:00+00:00"), "refunder",
              transaction_id=purchases[0]["transaction_id"]),
        event("refund-part", "refund", at("2026-11-01T18:00:01+00:00"), "refunder",
              transaction_id=purchases[1]["transaction_id"], value=10.0, currency="EUR"),
        # Goal events sending their own values: they win over the goal's default.
        event("valued-1", "download", at("2026-11-01T16:00:00+00:00"), "valued", value=4.0),
        event("valued-2", "download", at("2026-11-01T16:00:01+00:00"), "valued", value=2.0,
              currency="EUR"),
        # The same event id on two sites: two events.
        event("collide", "page_view", at("2026-11-01T16:30:00+00:00"), "collide-a"),
        event("collide", "page_view", at("2026-11-01T16:30:00+00:00"), "collide-b",
              site="blog.example"),
        # A server-side purchase without session id joins the visit that made it.
        event("stitch-1", "page_view", at("2026-11-01T17:00:00+00:00"), "stitched",
              session_id="S-ST", visitor_scope="client", utm_source="google", utm_medium="cpc"),
        event("stitch-2", "purchase", at("2026-11-01T17:05:00+00:00"), "stitched",
              visitor_scope="client", value=100.0, transaction_id="T-ST"),
        # A direct return of a stable visitor is credited to their newsletter visit.
        event("return-1", "page_view", at("2026-11-01T14:00:00+00:00"), "returning",
              session_id="R1", visitor_scope="client", utm_source="Newsletter",
              utm_medium="email", utm_campaign="nov"),
        event("return-2", "page_view", at("2026-11-02T14:00:00+00:00"), "returning",
              session_id="R2", visitor_scope="client"),
        # A user_id over three days of rotating cookie-free ids: one user.
        event("user-1", "page_view", at("2026-10-31T15:00:00+00:00"), "rotating-1",
              user_id="u-rotating", visitor_scope="daily"),
        event("user-2", "page_view", at("2026-11-01T15:00:00+00:00"), "rotating-2",
              user_id="u-rotating", visitor_scope="daily"),
        event("user-3", "page_view", at("2026-11-02T15:00:00+00:00"), "rotating-3",
              user_id="u-rotating", visitor_scope="daily"),
        # A client session id reused more than max_session_days (3) later: cut there.
        event("long-1", "page_view", at("2026-10-31T12:00:00+00:00"), "long", session_id="L"),
        event("long-2", "page_view", at("2026-11-03T12:00:01+00:00"), "long", session_id="L"),
    ]  # fmt: skip
    return events + extra


def extra_costs() -> list[Row]:
    return [
        cost(DAY, "shop.example", "youtube", "cpc", "tv_launch", "300.00"),  # no sessions
        cost(DAY, "shop.example", "google", "cpc", None, "50.00"),  # NULL campaign matches
        cost(DAY, "shop.example", "google", "cpc", "brand_search", "40.00", "EUR", "eur_group"),
        cost(DAY, "blog.example", "newsletter", "email", "weekly_digest", "12.50", "GBP", "x"),
        cost(DAY, "blog.example", "tiktok", "paid_social", "only_gbp", "20.00", "GBP"),
    ]


def replay_into_lake(settings: Settings) -> None:
    """Copies of lake rows in other files: a later landing with other values (ignored)
    and an earlier one (which wins)."""
    partition = settings.lake_dir / "events" / f"event_date={DAY}"
    (original,) = partition.glob("import-*.parquet")
    rows = pq.ParquetFile(original).read()
    names = rows["event_name"].to_pylist()
    late = rows.take([i for i, n in enumerate(names) if n == "purchase"][:5])
    late = late.set_column(
        late.schema.get_field_index("value"), "value", pa.array([9999.0] * late.num_rows)
    ).set_column(
        late.schema.get_field_index("ingested_at"), "ingested_at",
        pa.array([datetime(2030, 1, 1, tzinfo=UTC)] * late.num_rows, pa.timestamp("us", tz="UTC")),
    )  # fmt: skip
    early = rows.take([i for i, n in enumerate(names) if n == "page_view"][:3])
    early = early.set_column(
        early.schema.get_field_index("page_url"), "page_url",
        pa.array(["https://shop.example/replayed"] * early.num_rows),
    ).set_column(
        early.schema.get_field_index("ingested_at"), "ingested_at",
        pa.array([datetime(2026, 11, 3, tzinfo=UTC)] * early.num_rows, pa.timestamp("us", tz="UTC")),
    )  # fmt: skip
    pq.write_table(late.cast(lake_arrow_schema()), partition / "replay-late.parquet")
    pq.write_table(early.cast(lake_arrow_schema()), partition / "replay-early.parquet")


@dataclass
class Generated:
    settings: Settings
    costs: list[Row]
    builds: dict[date, DayBuild]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    root = tmp_path_factory.mktemp("generated")
    settings = make_settings(
        root / "data", timezone=TIMEZONE, goals=GOALS, goal_counting=GOAL_COUNTING,
        currency_rates=RATES,
    )  # fmt: skip
    config = GeneratorConfig(days=3, start=START, seed=11, events_per_day=1500, sites=SITES)
    files = write_dataset(config, root / "gen")
    lines = [json.loads(line) for line in files.events_path.open()]
    import_events(settings, with_traps(lines), root / "events.jsonl")
    replay_into_lake(settings)
    costs = [
        {**row, "date": date.fromisoformat(row["date"])} for row in generate_costs(config)
    ] + extra_costs()
    load_costs(settings, costs)
    builds = {day: build_day(settings, day) for day in (START, DAY, DAY + timedelta(days=1))}
    return Generated(settings, costs, builds)


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [START, DAY, DAY + timedelta(days=1)])
def test_daily_tables_equal_an_independent_recomputation_from_the_lake(
    generated: Generated, day: date
) -> None:
    settings = generated.settings
    expected = recompute(settings, day, generated.costs)
    build = generated.builds[day]

    sessions = {
        key: row for (key,), row in rows_by(mart(settings, "sessions", day), "session_id").items()
    }
    assert sessions.keys() == expected.sessions.keys()
    for session_id, want in expected.sessions.items():
        assert_same(sessions[session_id], {k: v for k, v in want.items() if k not in NOT_IN_MART},
                    session_id)  # fmt: skip
        # The lake's channel group (per event, at ingestion) agrees with the session's
        # source / medium / campaign derived at build time.
        got = sessions[session_id]
        assert (
            default_channel_group(got["source"], got["medium"], got["campaign"])
            == (got["channel_group"])
        )

    daily = rows_by(mart(settings, "daily_sessions", day), "site_id", "channel_group", "source",
                    "medium", "campaign", "device_category", "country")  # fmt: skip
    assert daily.keys() == expected.daily_sessions.keys()
    for key, want in expected.daily_sessions.items():
        assert_same(daily[key], want, key)

    per_campaign = rows_by(
        mart(settings, "daily_cost_per_session", day), "site_id", "source", "medium", "campaign"
    )
    assert per_campaign.keys() == expected.cost_per_session.keys()
    for key, want in expected.cost_per_session.items():
        assert_same(per_campaign[key], want, key)

    per_site = rows_by(mart(settings, "daily_site_summary", day), "site_id")
    assert per_site.keys() == expected.site_summary.keys()
    for key, want in expected.site_summary.items():
        assert_same(per_site[key], want, key)

    # The marts hold what the warehouse holds.
    for output in OUTPUTS[:4]:
        assert build.rows[output.table] == len(mart(settings, output.table, day))
    assert build.unconverted_values == expected.unconverted_values


def test_the_generated_data_exercises_every_trap(generated: Generated) -> None:
    expected = recompute(generated.settings, DAY, generated.costs)
    sessions = expected.sessions.values()
    by_visitor = {s["visitor_id"]: s for s in sessions}
    assert expected.dropped_purchases >= 2  # repeated transaction ids
    assert expected.unconverted_values >= 1
    assert generated.builds[DAY].unconverted_costs == 2
    # Crossing local midnight: dated by the first event.
    assert "midnight-a" not in by_visitor
    assert by_visitor["midnight-b"]["revenue"] == Decimal(80)
    assert by_visitor["midnight-b"]["session_end"].astimezone(ZoneInfo(TIMEZONE)).date() > DAY
    assert (by_visitor["gclid-visitor"]["source"], by_visitor["gclid-visitor"]["campaign"]) == (
        "google",
        "(not set)",
    )
    # Refunds: a whole transaction (its purchase's amount) and 10 EUR.
    refunded = by_visitor["refunder"]
    assert refunded["refunds"] > Decimal("12.5")
    assert refunded["net_revenue"] == -refunded["refunds"]
    assert by_visitor["valued"]["conversion_value"] == Decimal("6.5")
    assert {"collide-a", "collide-b"} <= by_visitor.keys()
    stitched = by_visitor["stitched"]
    assert (stitched["source"], stitched["revenue"], stitched["events"]) == ("google", 100, 2)
    assert by_visitor["returning"]["source"] == "newsletter"
    returned = recompute(generated.settings, DAY + timedelta(days=1), generated.costs)
    again = {s["visitor_id"]: s for s in returned.sessions.values()}["returning"]
    assert (again["source"], again["campaign"]) == ("newsletter", "nov")
    assert expected.reattributed >= 1 and returned.reattributed >= 1
    assert generated.builds[START].cut_sessions == 1
    costs = expected.cost_per_session
    assert costs[("shop.example", "youtube", "cpc", "tv_launch")]["sessions"] == 0
    # The gclid-only session and the stitched one (google / cpc without a campaign).
    assert costs[("shop.example", "google", "cpc", "(not set)")]["sessions"] == 2
    assert costs[("blog.example", "tiktok", "paid_social", "only_gbp")]["cost"] == 0
    assert any(c["cost"] == 0 and c["sessions"] > 0 for c in costs.values())
    # A goal counted per session although hit twice, one counted per event.
    assert any(s["conversion_value"] % Decimal("1.5") != 0 for s in sessions)
    assert any(s["conversion_value"] >= 3 and s["conversions"] >= 2 for s in sessions)


def test_weekly_and_monthly_sessions_per_user_equal_a_recomputation(
    generated: Generated,
) -> None:
    """A user is the user_id, else the stable client id; cookie-free sessions without a
    user_id have none and are left out. Weeks are ISO weeks (Oct 31 and Nov 1, 2026 are
    the end of week 44), months calendar months, each over the days built."""
    weeks: dict[tuple[str, str], list[str]] = defaultdict(list)
    months: dict[tuple[str, str], list[str]] = defaultdict(list)
    for day in generated.builds:
        for session in recompute(generated.settings, day, generated.costs).sessions.values():
            if session["user_key"] is not None:
                weeks[(day.strftime("%G-W%V"), session["site_id"])].append(session["user_key"])
                months[(day.strftime("%Y-%m"), session["site_id"])].append(session["user_key"])

    def expected(groups: dict[tuple[str, str], list[str]]) -> list[tuple[Any, ...]]:
        return sorted(
            (*key, len(users), len(set(users)), len(users) / len(set(users)))
            for key, users in groups.items()
        )

    assert {week for week, _ in weeks} == {"2026-W44", "2026-W45"}
    assert warehouse_rows(generated.settings, "weekly_sessions_per_user") == expected(weeks)
    assert warehouse_rows(generated.settings, "monthly_sessions_per_user") == expected(months)
    # The user_id seen on three days under three cookie-free ids is one user.
    november = [key for (month, _), keys in months.items() if month == "2026-11" for key in keys]
    assert november.count("u-rotating") == 2


def test_seed_example_cost_per_session(tmp_path: Path) -> None:
    """$8,000 of cost over 10,000 sessions is $0.80 a session."""
    settings = make_settings(tmp_path / "data")
    import_events(
        settings,
        (event(f"e{i}", "page_view", T0 + timedelta(seconds=i), f"v{i}") for i in range(10_000)),
        tmp_path / "events.jsonl",
    )
    load_costs(settings, [cost(DAY, "shop.example", "google", "cpc", "brand", "5000.00"),
                          cost(DAY, "shop.example", "bing", "cpc", "brand", "3000.00")])  # fmt: skip

    build_day(settings, DAY)

    (summary,) = mart(settings, "daily_site_summary")
    assert (summary["sessions"], summary["cost"]) == (10_000, Decimal(8000))
    assert summary["cost_per_session"] == pytest.approx(0.80)


def test_seed_example_session_value(tmp_path: Path) -> None:
    """($500 revenue + $200 goal value) over 100 sessions is $7.00 a session."""
    settings = make_settings(tmp_path / "data", goals={"sign_up": 5.0})
    events = [event(f"p{i}", "page_view", T0 + timedelta(seconds=i), f"v{i}") for i in range(100)]
    events += [
        event(f"buy{i}", "purchase", T0 + timedelta(seconds=i + 1), f"v{i}", value=100.0,
              currency="USD", transaction_id=f"T{i}")
        for i in range(5)
    ] + [
        event(f"su{i}", "sign_up", T0 + timedelta(seconds=i + 1), f"v{i}") for i in range(60, 100)
    ]  # fmt: skip
    import_events(settings, events, tmp_path / "events.jsonl")

    build_day(settings, DAY)

    (summary,) = mart(settings, "daily_site_summary")
    assert (summary["revenue"], summary["conversion_value"]) == (Decimal(500), Decimal(200))
    assert (summary["sessions"], summary["conversions"]) == (100, 45)
    assert summary["session_value"] == pytest.approx(7.00)


def test_ratios_are_null_when_their_denominator_is_zero(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(
        settings,
        [event(f"d{i}", "page_view", T0 + timedelta(minutes=i), f"v{i}") for i in range(3)],
        tmp_path / "events.jsonl",
    )
    load_costs(settings, [cost(DAY, "shop.example", "youtube", "cpc", "launch", "100.00"),
                          cost(DAY, "blog.example", "google", "cpc", None, "10.00")])  # fmt: skip

    build_day(settings, DAY)

    per_campaign = rows_by(
        mart(settings, "daily_cost_per_session"), "site_id", "source", "medium", "campaign"
    )
    cost_only = per_campaign[("shop.example", "youtube", "cpc", "launch")]
    assert (cost_only["sessions"], cost_only["cost_per_session"]) == (0, None)
    assert (cost_only["roas"], cost_only["cost_per_conversion"]) == (0.0, None)
    no_cost = per_campaign[("shop.example", "(direct)", "(none)", "(not set)")]
    assert (no_cost["sessions"], no_cost["cost"], no_cost["cost_per_session"]) == (3, 0, 0.0)
    assert (no_cost["roas"], no_cost["cost_per_conversion"]) == (None, None)

    per_site = rows_by(mart(settings, "daily_site_summary"), "site_id")
    blog = per_site[("blog.example",)]
    assert (blog["sessions"], blog["cost"]) == (0, Decimal(10))
    ratios = ("cost_per_session", "session_value", "revenue_per_session", "sessions_per_user",
              "bounce_rate")  # fmt: skip
    assert [blog[name] for name in ratios] == [None] * 5
    shop = per_site[("shop.example",)]
    assert shop["cost_per_session"] == pytest.approx(100 / 3)
    assert shop["bounce_rate"] == 1.0


def test_a_day_without_events_still_reports_its_costs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    load_costs(settings, [cost(DAY, "shop.example", "google", "cpc", "brand", "25.00")])

    build = build_day(settings, DAY)

    assert build.rows["sessions"] == 0
    (row,) = mart(settings, "daily_cost_per_session")
    assert (row["cost"], row["sessions"], row["cost_per_session"]) == (Decimal(25), 0, None)


def test_engaged_and_bounce_at_their_boundaries(tmp_path: Path, bare: BareRunner) -> None:
    """GA4: engaged is more than 10 s of engagement time (of duration when no event sent
    engagement time), or a key event, or two page views."""
    settings = make_settings(tmp_path / "data", goals={"sign_up": 5.0})
    ms = timedelta(milliseconds=1)
    cases: dict[str, tuple[list[tuple[str, timedelta, dict[str, Any]]], dict[str, Any], bool]] = {
        # visitor: (events after the landing page view, the landing's fields, engaged)
        "short": ([("scroll", 9_999 * ms, {})], {}, False),
        "ten_seconds": ([("scroll", 10_000 * ms, {})], {}, False),  # not *more* than 10 s
        "just_over": ([("scroll", 10_001 * ms, {})], {}, True),
        "one_page": ([], {}, False),
        "one_page_a_minute_engaged": ([], {"engagement_time_ms": 60_000}, True),
        "long_but_little_engagement": (
            [("scroll", 60_000 * ms, {"engagement_time_ms": 2_000})], {"engagement_time_ms": 3_000},
            False,
        ),
        "engagement_signal": ([("user_engagement", 30_000 * ms, {"engagement_time_ms": 11_000})],
                              {}, True),
        "two_pages": ([("page_view", 1_000 * ms, {})], {}, True),
        "purchase": ([("purchase", 1_000 * ms, {})], {}, True),
        "goal": ([("sign_up", 1_000 * ms, {})], {}, True),
        "not_a_goal": ([("newsletter_open", 1_000 * ms, {})], {}, False),
    }  # fmt: skip
    events = []
    for n, (visitor, (after, landing, _)) in enumerate(cases.items()):
        start = T0 + timedelta(hours=n)
        events.append(event(f"{visitor}-0", "page_view", start, visitor, **landing))
        events += [event(f"{visitor}-{i + 1}", name, start + delay, visitor, **extra)
                   for i, (name, delay, extra) in enumerate(after)]  # fmt: skip
    import_events(settings, events, tmp_path / "events.jsonl")

    sessions = {row["visitor_id"]: row for row in bare(settings).rows("sessions_this_run")}

    assert {v: (s["engaged"], s["bounce"]) for v, s in sessions.items()} == {
        visitor: (engaged, not engaged) for visitor, (_, _, engaged) in cases.items()
    }
    assert sessions["short"]["duration_s"] == 9.999
    assert sessions["ten_seconds"]["duration_s"] == 10.0
    assert sessions["one_page_a_minute_engaged"]["engagement_time_s"] == 60.0
    # A signal adds engagement time; it is no event and does not stretch the session.
    signal = sessions["engagement_signal"]
    assert (signal["engagement_time_s"], signal["events"], signal["duration_s"]) == (11.0, 1, 0.0)
    assert signal["exit_page"] == signal["entry_page"]


def test_goal_counting_transactions_and_currencies(tmp_path: Path, bare: BareRunner) -> None:
    settings = make_settings(
        tmp_path / "data", goals={"sign_up": 5.0, "download": 1.5},
        goal_counting={"sign_up": "session"}, currency_rates=RATES,
    )  # fmt: skip
    s = timedelta(seconds=1)
    events = [
        event("g0", "page_view", T0, "goals"),
        *(event(f"g{i}", "sign_up", T0 + i * s, "goals") for i in (1, 2)),
        *(event(f"g{i}", "download", T0 + i * s, "goals") for i in (3, 4, 5)),
        event("t0", "purchase", T0, "first", value=100.0, currency="USD", transaction_id="T1"),
        event("t1", "purchase", T0 + s, "again", value=100.0, currency="USD", transaction_id="T1"),
        event("t2", "purchase", T0, "other-site", site="blog.example", value=30.0,
              currency="USD", transaction_id="T1"),
        event("c0", "purchase", T0, "euro", value=10.0, currency="EUR", transaction_id="E"),
        event("c1", "purchase", T0, "pound", value=10.0, currency="GBP", transaction_id="P"),
        event("c2", "purchase", T0, "none", value=7.0, transaction_id="N"),
    ]  # fmt: skip
    import_events(settings, events, tmp_path / "events.jsonl")

    run = bare(settings)
    sessions = {row["visitor_id"]: row for row in run.rows("sessions_this_run")}

    def measures(visitor: str) -> tuple[Any, ...]:
        row = sessions[visitor]
        return row["conversions"], row["revenue"], row["conversion_value"]

    assert measures("goals") == (1 + 3, 0, Decimal("9.5"))
    assert measures("first") == (1, 100, 0)
    assert measures("again") == (0, 0, 0)  # T1 was already counted today
    assert measures("other-site") == (1, 30, 0)  # transaction ids are per site
    assert measures("euro") == (1, Decimal("12.5"), 0)
    assert measures("pound") == (1, 0, 0)  # a conversion, but its amount is unknown
    assert measures("none") == (1, 7, 0)
    flagged = [row["event_id"] for row in run.rows("stg_events") if row["unconverted"]]
    assert flagged == ["c1"]


@pytest.mark.parametrize("direct_sessions", ["last_non_direct", "keep"])
def test_a_direct_session_takes_its_users_last_non_direct_source(
    tmp_path: Path, bare: BareRunner, direct_sessions: str
) -> None:
    """GA4's default reporting (and dbt-ga4): a direct session is credited to the same
    user's latest non-direct session of the look-back; `keep` leaves it direct."""
    settings = make_settings(tmp_path / "data", attribution={"direct_sessions": direct_sessions,
                                                              "lookback_days": 30})  # fmt: skip
    ga4 = {"visitor_scope": "client"}
    import_events(settings, [
        # Older sources of the same client: the latest non-direct one wins.
        event("old", "page_view", T0 - timedelta(days=40), "client", session_id="s0",
              utm_source="bing", utm_medium="cpc", **ga4),  # beyond the 30 days
        event("mail", "page_view", T0 - timedelta(days=9), "client", session_id="s1",
              utm_source="newsletter", utm_medium="email", utm_campaign="Nov", **ga4),
        event("direct", "page_view", T0 - timedelta(days=2), "client", session_id="s2", **ga4),
        event("back", "page_view", T0, "client", session_id="s3", **ga4),
        # A direct session with no earlier source stays direct.
        event("new", "page_view", T0, "newcomer", session_id="n1", **ga4),
        # The user_id links a cookie-free visitor's earlier visit under another id.
        event("ad", "page_view", T0 - timedelta(days=1), "cf-1", user_id="u1",
              utm_source="google", utm_medium="cpc", visitor_scope="daily"),
        event("again", "page_view", T0, "cf-2", user_id="u1", visitor_scope="daily"),
        # Without one, a cookie-free visitor's id lives a day: nothing to credit.
        event("cf", "page_view", T0, "cf-3", visitor_scope="daily"),
    ], tmp_path / "events.jsonl")  # fmt: skip

    run = bare(settings)
    sessions = {row["visitor_id"]: row for row in run.rows("sessions_this_run")}

    def attribution(visitor: str) -> tuple[str, str, str, str]:
        row = sessions[visitor]
        return row["source"], row["medium"], row["campaign"], row["channel_group"]

    direct = ("(direct)", "(none)", "(not set)", "Direct")
    if direct_sessions == "keep":
        assert {attribution(v) for v in sessions} == {direct}
        return
    assert attribution("client") == ("newsletter", "email", "nov", "Email")
    assert attribution("cf-2") == ("google", "cpc", "(not set)", "Paid Search")
    assert attribution("newcomer") == direct
    assert attribution("cf-3") == direct


def test_events_without_a_session_id_are_stitched_as_ga4_does(generated: Generated) -> None:
    """Recomputed from the lake: an event without a client session id is in the session
    of its visitor's latest client session when that one's last event is at most the
    timeout before it; otherwise in no client session."""
    timeout = timedelta(minutes=generated.settings.sessionization.timeout_minutes)
    by_visitor: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in lake_events(generated.settings):
        by_visitor[(row["site_id"], row["visitor_id"])].append(row)
    stitched = 0
    for events in by_visitor.values():
        client_sessions = {e["session_id"] for e in events if e["client_session_id"]}
        latest: tuple[str, datetime, datetime] | None = None  # session, first, last
        for e in in_time_order(events):
            if e["client_session_id"] is not None:
                same = latest is not None and latest[0] == e["session_id"]
                first = latest[1] if same and latest else e["event_ts"]
                latest = (e["session_id"], first, e["event_ts"])
            elif latest is not None and latest[1] <= e["event_ts"] <= latest[2] + timeout:
                assert e["session_id"] == latest[0], e["event_id"]
                latest = (latest[0], latest[1], e["event_ts"])
                stitched += 1
            else:
                assert e["session_id"] not in client_sessions, e["event_id"]
    assert stitched >= 1


def test_monthly_sessions_per_user_counts_stable_ids_only(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    next_day = T0 + timedelta(days=1)
    import_events(settings, [
        event("a1", "page_view", T0, "ga4", session_id="s1"),
        event("a2", "page_view", next_day, "ga4", session_id="s2"),
        event("u1", "page_view", T0, "logged-in", user_id="u-hash"),
        event("c1", "page_view", T0, "cookie-free-1"),
        event("c2", "page_view", next_day, "cookie-free-2"),
    ], tmp_path / "events.jsonl")  # fmt: skip

    build_day(settings, DAY)
    assert warehouse_rows(settings, "monthly_sessions_per_user") == [
        ("2026-11", "shop.example", 2, 2, 1.0)
    ]
    build_day(settings, DAY + timedelta(days=1))
    assert warehouse_rows(settings, "monthly_sessions_per_user") == [
        ("2026-11", "shop.example", 3, 2, 1.5)
    ]
    # `sessionflow query` reads the marts, partition keys included, as the same rows.
    published = run_query(settings.marts_dir, "SELECT * FROM monthly_sessions_per_user")
    assert published.rows == warehouse_rows(settings, "monthly_sessions_per_user")


def test_rebuilding_a_date_replaces_exactly_that_date(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", goals={"sign_up": 5.0}, currency_rates=RATES)
    config = GeneratorConfig(days=2, start=DAY, seed=5, events_per_day=600, sites=SITES)
    files = write_dataset(config, tmp_path / "gen")
    import_file(settings, files.events_path, lambda _: None)
    load_costs(settings, [{**r, "date": date.fromisoformat(r["date"])}
                          for r in generate_costs(config)])  # fmt: skip
    tables = [output.table for output in OUTPUTS] + ["session_users"]

    def snapshot() -> tuple[dict[str, list[tuple[Any, ...]]], dict[Path, bytes]]:
        marts = sorted(settings.marts_dir.rglob("*.parquet"))
        return (
            {table: warehouse_rows(settings, table) for table in tables},
            {path: path.read_bytes() for path in marts},
        )

    first = build_day(settings, DAY)
    build_day(settings, DAY + timedelta(days=1))
    before = snapshot()
    again = build_day(settings, DAY)

    assert again == first
    assert snapshot() == before
    assert all(before[0][table] for table in tables)
    assert not list(settings.marts_dir.rglob("*.tmp"))


def test_models_have_exactly_the_designed_columns_and_the_warehouse_types(
    tmp_path: Path, bare: BareRunner
) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [event("e", "page_view", T0, "v")], tmp_path / "events.jsonl")
    run = bare(settings)
    # The monthly model reads the warehouse tables: fill them as a build does.
    store_day(run.con, {"run_date": DAY})
    for output in OUTPUTS:
        stage, table = run.con.table(output.stage), run.con.table(output.table)
        assert stage.columns == DOCUMENTED_COLUMNS[output.table].split(), output.table
        assert stage.types == table.types, output.table
