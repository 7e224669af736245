"""Two sites, each on its own time zone and currency, on the same UTC events, through the
real CLI: `import`, `costs load`, `backfill`, then the marts read with `query`.

la.example keeps America/Los_Angeles (UTC-7 until daylight saving time ends on
2026-11-01 at 09:00 UTC, UTC-8 after) and the global currency, USD; sh.example keeps
Asia/Shanghai (UTC+8, no daylight saving time) and CNY: 15 hours apart before the change,
16 after. The lake stays partitioned by UTC date (the global `timezone`). Each site's
expected figures are counted here, in plain Python with zoneinfo, from the events'
instants: never by the code under test.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import clean_env, run_cli
from tests.integration.test_incremental import ok, query

ZONES = {"la.example": "America/Los_Angeles", "sh.example": "Asia/Shanghai"}
CURRENCIES = {"la.example": "USD", "sh.example": "CNY"}
# Units of USD (the reporting currency) per unit: binary fractions, so every conversion
# here is exact.
RATES = {"USD": Decimal(1), "EUR": Decimal("1.25"), "CNY": Decimal("0.125")}
CONFIG = """\
sites = ["la.example", "sh.example"]
timezone = "UTC"
currency = "USD"

[currency_rates]
EUR = 1.25
CNY = 0.125

[site."la.example"]
timezone = "America/Los_Angeles"

[site."sh.example"]
timezone = "Asia/Shanghai"
currency = "CNY"
"""
FIRST, LAST = "2026-10-29", "2026-11-03"
PRICES = [(Decimal(10), "EUR"), (Decimal(5), "USD"), (Decimal(80), "CNY")]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def visits() -> list[tuple[str, list[datetime], tuple[Decimal, str] | None]]:
    """(visitor, its events' instants, its purchase) for one site; both sites get them."""
    start = utc("2026-10-30T00:30:00Z")
    spread = [
        (f"v{k}", [start + timedelta(hours=3 * k)], PRICES[k % 3] if k % 4 == 0 else None)
        for k in range(32)
    ]
    edges = [
        # 00:30 PDT on Oct 31 (23:30 Oct 30 if it were PST).
        ("edge-pdt", [utc("2026-10-31T07:30:00Z")], (Decimal(80), "CNY")),
        # One session across Los Angeles' midnight: 23:50 Oct 31 and 00:10 Nov 1 (PDT).
        ("midnight", [utc("2026-11-01T06:50:00Z"), utc("2026-11-01T07:10:00Z")], None),
        # 01:30 twice on Nov 1: PDT, then PST.
        ("twice-1", [utc("2026-11-01T08:30:00Z")], None),
        ("twice-2", [utc("2026-11-01T09:30:00Z")], (Decimal(5), "USD")),
        # 23:30 PST on Nov 1, the 25-hour day (00:30 Nov 2 if it were still PDT).
        ("edge-pst", [utc("2026-11-02T07:30:00Z")], (Decimal(10), "EUR")),
    ]
    return spread + edges


def lake_events() -> list[dict[str, Any]]:
    events = []
    for site in ZONES:
        for visitor, instants, purchase in visits():
            who: dict[str, Any] = {
                "site_id": site,
                "visitor_id": visitor,
                "user_id": f"u-{visitor}",
            }
            for n, instant in enumerate(instants):
                events.append(
                    {"event_id": f"{visitor}-{n}", "event_name": "page_view",
                     "event_ts": instant.isoformat(), **who}
                )  # fmt: skip
            if purchase is not None:
                amount, currency = purchase
                events.append(
                    {"event_id": f"{visitor}-buy", "event_name": "purchase",
                     "event_ts": (instants[0] + timedelta(minutes=1)).isoformat(), **who,
                     "value": float(amount), "currency": currency,
                     "transaction_id": f"T-{visitor}"}
                )  # fmt: skip
    return events


def expected_days(site: str) -> dict[str, dict[str, Any]]:
    """Sessions and revenue (in the site's currency) per local date of `site`: a session
    counts on the local date of its first event."""
    zone, own = ZoneInfo(ZONES[site]), RATES[CURRENCIES[site]]
    days: dict[str, dict[str, Any]] = defaultdict(lambda: {"sessions": 0, "revenue": Decimal(0)})
    for _, instants, purchase in visits():
        day = days[instants[0].astimezone(zone).date().isoformat()]
        day["sessions"] += 1
        if purchase is not None:
            amount, currency = purchase
            day["revenue"] += amount * RATES[currency] / own
    return dict(days)


def test_each_site_counts_its_own_local_days_and_currency_across_a_dst_change(
    tmp_path: Path,
) -> None:
    config = tmp_path / "sessionflow.toml"
    config.write_text(CONFIG)
    env = clean_env(
        SESSIONFLOW_CONFIG=str(config),
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data"),
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lake_events()))
    ok(run_cli(env, "import", str(events)))
    # A cost row is dated by its site's own day; each in the other site's currency.
    costs = tmp_path / "costs.csv"
    costs.write_text(
        "date,site_id,source,medium,cost,currency\n"
        "2026-10-31,la.example,google,cpc,80,CNY\n"
        "2026-10-31,sh.example,google,cpc,10,USD\n"
    )
    ok(run_cli(env, "costs", "load", str(costs)))
    ok(run_cli(env, "backfill", "--start", FIRST, "--end", LAST), 0, 4)

    rows = query(
        env,
        "SELECT site_id, CAST(date AS VARCHAR) AS date, sessions, revenue, cost, currency, "
        "reporting_currency, revenue_reporting, cost_reporting "
        "FROM daily_site_summary WHERE sessions > 0 ORDER BY site_id, date",
    )
    for site in ZONES:
        got = {
            row["date"]: {"sessions": row["sessions"], "revenue": Decimal(str(row["revenue"]))}
            for row in rows
            if row["site_id"] == site
        }
        assert got == expected_days(site), site
        assert {row["currency"] for row in rows if row["site_id"] == site} == {CURRENCIES[site]}
    assert {row["reporting_currency"] for row in rows} == {"USD"}

    # By hand, Los Angeles: Oct 31 (PDT, 07:00Z Oct 31 .. 07:00Z Nov 1) holds v11..v18
    # (09:30Z Oct 31 .. 06:30Z Nov 1), edge-pdt and the session across midnight; Nov 1 is
    # 25 hours (07:00Z Nov 1 .. 08:00Z Nov 2): v19..v26, both 01:30s and edge-pst.
    la = {row["date"]: row for row in rows if row["site_id"] == "la.example"}
    assert (la["2026-10-31"]["sessions"], la["2026-11-01"]["sessions"]) == (10, 11)
    # Nov 1 revenue: v20 (80 CNY = 10 USD), v24 (10 EUR = 12.5 USD), twice-2 (5 USD),
    # edge-pst (12.5 USD).
    assert la["2026-11-01"]["revenue"] == 40.0
    # Shanghai: Oct 31 is 16:00Z Oct 30 .. 16:00Z Oct 31: v6..v13 and edge-pdt; Nov 1's
    # revenue, in CNY: v16 (5 USD = 40), v20 (80), twice-2 (40).
    sh = {row["date"]: row for row in rows if row["site_id"] == "sh.example"}
    assert sh["2026-10-31"]["sessions"] == 9
    # The cost rows, in each site's currency, and the summary's reporting-currency view.
    assert (la["2026-10-31"]["cost"], la["2026-10-31"]["cost_reporting"]) == (10.0, 10.0)
    assert (sh["2026-10-31"]["cost"], sh["2026-10-31"]["cost_reporting"]) == (80.0, 10.0)
    assert (sh["2026-11-01"]["revenue"], sh["2026-11-01"]["revenue_reporting"]) == (160.0, 20.0)

    # Months and ISO weeks are the site's own: Oct 31 in Los Angeles is Nov 1 in UTC.
    periods: Counter[tuple[str, str]] = Counter()
    for site in ZONES:
        for day, figures in expected_days(site).items():
            periods[(site, day[:7])] += figures["sessions"]
            periods[(site, date.fromisoformat(day).strftime("%G-W%V"))] += figures["sessions"]
    per_period = query(
        env,
        "SELECT site_id, month AS period, sessions FROM monthly_sessions_per_user UNION ALL "
        "SELECT site_id, week, sessions FROM weekly_sessions_per_user",
    )
    assert {(r["site_id"], r["period"]): r["sessions"] for r in per_period} == dict(periods)

    # Another zone for one site: every built day is stale, naming the site and the change.
    config.write_text(CONFIG.replace("Asia/Shanghai", "Asia/Tokyo"))
    status = ok(run_cli(env, "status"))
    assert "6 stale" in status, status
    assert (
        "stale 2026-10-30: configuration changed "
        "(sh.example time zone Asia/Shanghai -> Asia/Tokyo)" in status
    )
    assert f"rebuild them: sessionflow backfill --start {FIRST} --end {LAST}" in status

    # West by 4 hours: sessions move to the day before. The rebuild status names, one day
    # at a time, finds no duplicate in the days still waiting for theirs.
    def sh_days() -> dict[str, int]:
        rows = query(
            env,
            "SELECT CAST(date AS VARCHAR) AS date, sessions FROM daily_site_summary "
            "WHERE site_id = 'sh.example'",
        )
        return {row["date"]: row["sessions"] for row in rows}

    before = sh_days()
    config.write_text(CONFIG.replace("Asia/Shanghai", "Asia/Dubai"))
    rebuilt = run_cli(env, "backfill", "--start", FIRST, "--end", LAST, "--parallel", "1")
    output = rebuilt.stdout + rebuilt.stderr
    assert rebuilt.returncode in (0, 4), output
    assert not [
        line for line in output.splitlines() if "duplicate session" in line and "FAIL" in line
    ]
    assert sh_days() != before  # sessions did move across dates
    assert sum(sh_days().values()) == sum(before.values())
    assert "0 stale" in ok(run_cli(env, "status"))
