"""The GA4 rules issue's measured differences, each through the path users run:
`sessionflow import` -> `costs load` -> `backfill` -> `query` (a process per command).

One lake holds every case, each on its own visitors (and, where a per-site total is
asserted, its own site), so one backfill serves them all. Row 11 (a GA4 retry) goes
through the running collector and the consumer: tests/integration/test_collector_ga4_retry.py.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import clean_env, run_cli

SITES = ("shop.example", "a.example", "b.example", "users.example", "ads.example")
CONFIG = f"""
sites = {json.dumps(list(SITES))}
timezone = "UTC"
currency = "USD"

[goals]
conversion = 5.0
"""
START, END = "2026-11-08", "2026-11-14"
D = "2026-11-10"


def event(event_id: str, name: str, ts: str, visitor: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_name": name, "event_ts": ts,
            "site_id": fields.pop("site", "shop.example"), "visitor_id": visitor,
            "page_url": fields.pop("page_url", "https://shop.example/"), **fields}  # fmt: skip


GA4 = {"visitor_scope": "client"}
COOKIE_FREE = {"visitor_scope": "daily"}

EVENTS = [
    # 1: page views with a session id from google/cpc, then a server-side purchase of
    #    $100 from the same client without one.
    event("r1-a", "page_view", f"{D}T10:00:00Z", "r1", session_id="S1", utm_source="google",
          utm_medium="cpc", utm_campaign="row1", **GA4),
    event("r1-b", "page_view", f"{D}T10:02:00Z", "r1", session_id="S1", **GA4),
    event("r1-c", "purchase", f"{D}T10:05:00Z", "r1", value=100.0, currency="USD",
          transaction_id="T-R1", **GA4),
    # 2: one client session id from 23:50 to 00:10 two days later.
    event("r2-a", "page_view", f"{D}T23:50:00Z", "r2", session_id="S2", **GA4),
    event("r2-b", "purchase", "2026-11-12T00:10:00Z", "r2", session_id="S2", value=50.0,
          transaction_id="T-R2", **GA4),
    # 3: a purchase re-sent the next morning.
    event("r3-a", "purchase", f"{D}T20:01:00Z", "r3", value=100.0, transaction_id="T3", **GA4),
    event("r3-b", "purchase", "2026-11-11T08:00:00Z", "r3", value=100.0, transaction_id="T3",
          **GA4),
    # 4: the same event id on two sites.
    event("1", "purchase", f"{D}T11:00:00Z", "r4a", site="a.example", value=10.0,
          page_url="https://a.example/"),
    event("1", "purchase", f"{D}T11:00:00Z", "r4b", site="b.example", value=70.0,
          page_url="https://b.example/"),
    # 5: exactly 10.000 s without engagement time; one page view with 60 s of it.
    event("r5a-1", "page_view", f"{D}T12:00:00Z", "r5a"),
    event("r5a-2", "scroll", f"{D}T12:00:10Z", "r5a"),
    event("r5b-1", "page_view", f"{D}T12:00:00Z", "r5b", engagement_time_ms=60_000),
    # 6: a user_id on three days of rotating cookie-free ids; a GA4 client with two
    #    sessions, only one with a session id; a cookie-free visitor without a user_id.
    *(
        event(f"r6-u{n}", "page_view", f"2026-11-{9 + n:02d}T09:00:00Z", f"cf-{n}",
              site="users.example", page_url="https://users.example/", user_id="U1",
              **COOKIE_FREE)
        for n in range(3)
    ),
    event("r6-g1", "page_view", f"{D}T09:00:00Z", "g6", site="users.example",
          page_url="https://users.example/", session_id="S6", **GA4),
    event("r6-g2", "page_view", "2026-11-12T09:00:00Z", "g6", site="users.example",
          page_url="https://users.example/", **GA4),
    event("r6-anon", "page_view", f"{D}T09:30:00Z", "cf-anon", site="users.example",
          page_url="https://users.example/", **COOKIE_FREE),
    # 7: a gclid only; mixed case; a trailing space; no campaign against "(not set)".
    event("r7-a", "page_view", f"{D}T13:00:00Z", "r7a", site="ads.example",
          page_url="https://ads.example/?gclid=abc123"),
    event("r7-b", "page_view", f"{D}T13:00:00Z", "r7b", site="ads.example",
          page_url="https://ads.example/", utm_source="Facebook", utm_medium="CPC",
          utm_campaign="Spring"),
    event("r7-c", "page_view", f"{D}T13:00:00Z", "r7c", site="ads.example",
          page_url="https://ads.example/", utm_source="bing", utm_medium="cpc",
          utm_campaign="may "),
    event("r7-d", "page_view", f"{D}T13:00:00Z", "r7d", site="ads.example",
          page_url="https://ads.example/", utm_source="newsletter", utm_medium="email"),
    # 8: a conversion with its own value (GA4's key-event value example), and one without.
    event("r8-a", "conversion", f"{D}T14:00:00Z", "r8a", value=25.0),
    event("r8-b", "conversion", f"{D}T14:00:00Z", "r8b"),
    # 10: a negative purchase (rejected); a purchase of $100 refunded the next day.
    event("r10-neg", "purchase", f"{D}T15:00:00Z", "r10n", value=-40.0),
    event("r10-buy", "purchase", f"{D}T15:00:00Z", "r10", value=100.0, transaction_id="T10",
          **GA4),
    event("r10-refund", "refund", "2026-11-11T15:00:00Z", "r10", transaction_id="T10", **GA4),
    # 12: utm parameters and a click id in the imported page_url.
    event("r12-a", "page_view", f"{D}T16:00:00Z", "r12a",
          page_url="https://shop.example/landing?utm_source=twitter&utm_medium=social"
                   "&utm_campaign=Launch"),
    event("r12-b", "page_view", f"{D}T16:00:00Z", "r12b",
          page_url="https://shop.example/landing?msclkid=xyz"),
]  # fmt: skip

COSTS = """date,site_id,source,medium,campaign,cost,currency
2026-11-10,shop.example,google,cpc,row1,10,USD
2026-11-10,ads.example,google,cpc,,20,USD
2026-11-10,ads.example,facebook,cpc,spring,30,USD
2026-11-10,ads.example,bing,cpc,may,40,USD
2026-11-10,ads.example,newsletter,email,(not set),5,USD
2026-11-10,shop.example,duckduckgo,cpc,brand,10,USD
2026-11-10,shop.example,duckduckgo,cpc,generic,20,USD
"""
# 9: a re-load holding only "brand" for a day that also has "generic".
COSTS_RELOAD = """date,site_id,source,medium,campaign,cost,currency
2026-11-10,shop.example,duckduckgo,cpc,brand,15,USD
"""


@dataclass
class Built:
    env: dict[str, str]
    import_output: str

    def query(self, sql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(
            ok(run_cli(self.env, "query", "--format", "json", sql))
        )
        return rows


def ok(result: subprocess.CompletedProcess[str], *codes: int) -> str:
    assert result.returncode in (codes or (0,)), result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("ga4-rules")
    (root / "sessionflow.toml").write_text(CONFIG)
    env = clean_env(
        SESSIONFLOW_CONFIG=str(root / "sessionflow.toml"),
        SESSIONFLOW_DATA_DIR=str(root / "data"), PREFECT_HOME=str(root / "prefect"),
    )  # fmt: skip
    (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    imported = ok(run_cli(env, "import", str(root / "events.jsonl")), 4)  # 4: one rejected
    (root / "costs.csv").write_text(COSTS)
    ok(run_cli(env, "costs", "load", str(root / "costs.csv")))
    (root / "reload.csv").write_text(COSTS_RELOAD)
    ok(run_cli(env, "costs", "load", str(root / "reload.csv")))
    ok(run_cli(env, "backfill", "--start", START, "--end", END), 0, 4)
    return Built(env, imported)


def sessions_of(built: Built, visitor: str) -> list[dict[str, Any]]:
    return built.query(
        "SELECT session_date::VARCHAR AS date, source, medium, campaign, channel_group, "
        "events, conversions, revenue, conversion_value, refunds, net_revenue, engaged "
        f"FROM sessions WHERE visitor_id = '{visitor}' ORDER BY session_start"
    )


def test_row1_a_purchase_without_session_id_joins_its_visit(built: Built) -> None:
    (session,) = sessions_of(built, "r1")
    assert (session["source"], session["medium"], session["revenue"]) == ("google", "cpc", 100)
    (row,) = built.query(
        "SELECT roas, sessions FROM daily_cost_per_session WHERE campaign = 'row1'"
    )
    assert row == {"roas": 10.0, "sessions": 1}


def test_row2_a_client_session_is_one_session_dated_by_its_start(built: Built) -> None:
    assert [(s["date"], s["events"], s["revenue"]) for s in sessions_of(built, "r2")] == [
        (D, 2, 50)
    ]


def test_row3_a_transaction_counts_once_across_days(built: Built) -> None:
    sessions = sessions_of(built, "r3")
    assert len(sessions) == 2
    assert sum(s["conversions"] for s in sessions) == 1
    assert sum(s["revenue"] for s in sessions) == 100


def test_row4_event_ids_are_unique_per_site(built: Built) -> None:
    rows = built.query(
        "SELECT site_id, revenue FROM daily_site_summary "
        "WHERE site_id IN ('a.example', 'b.example') ORDER BY site_id"
    )
    assert rows == [
        {"site_id": "a.example", "revenue": 10},
        {"site_id": "b.example", "revenue": 70},
    ]


def test_row5_engagement_is_engagement_time_not_a_10_s_span(built: Built) -> None:
    assert [s["engaged"] for s in sessions_of(built, "r5a")] == [False]
    assert [s["engaged"] for s in sessions_of(built, "r5b")] == [True]


def test_row6_users_are_user_ids_else_stable_client_ids(built: Built) -> None:
    for table, period in (("monthly_sessions_per_user", "month"),
                          ("weekly_sessions_per_user", "week")):  # fmt: skip
        rows = built.query(
            f"SELECT {period} AS period, sessions, users, sessions_per_user FROM {table} "
            "WHERE site_id = 'users.example'"
        )
        expected_period = "2026-11" if period == "month" else "2026-W46"
        assert rows == [
            {"period": expected_period, "sessions": 5, "users": 2, "sessions_per_user": 2.5}
        ]
    # The daily tables still count distinct visitors.
    (summary,) = built.query(
        f"SELECT users FROM daily_site_summary WHERE site_id = 'users.example' AND date = '{D}'"
    )
    assert summary["users"] == 3  # cf-1, g6 and cf-anon


def test_row7_click_ids_and_spellings_match_their_costs(built: Built) -> None:
    rows = built.query(
        "SELECT source, medium, campaign, sessions, cost_per_session "
        "FROM daily_cost_per_session WHERE site_id = 'ads.example' ORDER BY source"
    )
    assert [tuple(row.values()) for row in rows] == [
        ("bing", "cpc", "may", 1, 40.0),
        ("facebook", "cpc", "spring", 1, 30.0),
        ("google", "cpc", "(not set)", 1, 20.0),
        ("newsletter", "email", "(not set)", 1, 5.0),
    ]


def test_row8_a_value_sent_with_a_conversion_wins(built: Built) -> None:
    assert [s["conversion_value"] for s in sessions_of(built, "r8a")] == [25]
    assert [s["conversion_value"] for s in sessions_of(built, "r8b")] == [5]


def test_row9_a_cost_reload_replaces_only_its_campaigns(built: Built) -> None:
    rows = built.query(
        "SELECT campaign, cost FROM daily_cost_per_session "
        "WHERE source = 'duckduckgo' ORDER BY campaign"
    )
    assert rows == [{"campaign": "brand", "cost": 15}, {"campaign": "generic", "cost": 20}]


def test_row10_negative_purchases_are_rejected_and_refunds_reported_apart(
    built: Built,
) -> None:
    assert "rejected 1," in built.import_output
    assert "line 25: negative_amount: a purchase's value must not be negative" in (
        built.import_output
    )
    assert sessions_of(built, "r10n") == []
    bought, refunded = sessions_of(built, "r10")
    assert (bought["date"], bought["revenue"], bought["refunds"]) == (D, 100, 0)
    assert (refunded["date"], refunded["revenue"], refunded["refunds"]) == ("2026-11-11", 0, 100)
    assert refunded["net_revenue"] == -100
    (day,) = built.query(
        "SELECT revenue, refunds, net_revenue FROM daily_site_summary "
        "WHERE site_id = 'shop.example' AND date = '2026-11-11'"
    )
    assert day["refunds"] == 100 and day["net_revenue"] == day["revenue"] - 100


def test_row12_import_attributes_from_the_page_url(built: Built) -> None:
    (tagged,) = sessions_of(built, "r12a")
    assert (tagged["source"], tagged["medium"], tagged["campaign"]) == (
        "twitter", "social", "launch"
    )  # fmt: skip
    (clicked,) = sessions_of(built, "r12b")
    assert (clicked["source"], clicked["medium"], clicked["channel_group"]) == (
        "bing", "cpc", "Paid Search"
    )  # fmt: skip
