"""The data-quality checks after a day's build, on a small built warehouse (no Prefect)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from flows.quality import Check, check_day
from pipeline.config import Settings, SiteSettings
from pipeline.safe_text import MAX_LISTED
from pipeline.warehouse.build import build_day
from tests.unit.warehouse.test_warehouse_models import (
    T0,
    cost,
    event,
    import_events,
    load_costs,
    make_settings,
)

DAY = date(2026, 11, 1)


def checks_for(settings: Settings, costs: list[dict[str, Any]]) -> dict[str, Check]:
    if costs:
        load_costs(settings, costs)
    built = build_day(settings, DAY)
    return {check.name: check for check in check_day(settings, built)}


def test_cost_checks_name_unmatched_costs_unpaid_sessions_and_the_matched_share(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event("a", "page_view", T0, "v1", utm_source="google", utm_medium="cpc",
              utm_campaign="brand"),
        event("b", "page_view", T0, "v2", utm_source="bing", utm_medium="cpc",
              utm_campaign="spring"),
        event("c", "page_view", T0, "v3", utm_source="news", utm_medium="email"),
    ], tmp_path / "events.jsonl")  # fmt: skip

    checks = checks_for(settings, [
        cost(DAY, "shop.example", "google", "cpc", "brand", "30.00"),
        cost(DAY, "shop.example", "google", "cpc", "generic", "10.00"),  # no session
    ])  # fmt: skip

    unmatched = checks["costs without sessions"]
    assert not unmatched.ok and "google/cpc/generic" in unmatched.detail
    unpaid = checks["paid sessions without a cost row"]
    assert not unpaid.ok
    assert unpaid.detail == "1 paid sessions in 1 groups have no cost row: bing/cpc/spring"
    share = checks["share of cost matched to sessions"]
    assert not share.ok and share.detail.startswith("75.0% of 40")
    assert checks["sessions within max_session_days"].ok


def test_cost_checks_pass_when_every_cost_and_paid_session_match(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event("a", "page_view", T0, "v1", utm_source="Google", utm_medium="CPC",
              utm_campaign="Brand "),
    ], tmp_path / "events.jsonl")  # fmt: skip
    checks = checks_for(settings, [cost(DAY, "shop.example", "google", "cpc", "brand", "30")])
    for name in ("costs without sessions", "paid sessions without a cost row",
                 "share of cost matched to sessions"):  # fmt: skip
        assert checks[name].ok, checks[name].line()
    assert checks["share of cost matched to sessions"].detail.startswith("100.0% of 30")


def test_a_site_without_costs_is_not_asked_for_cost_rows(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event("a", "page_view", T0, "v1", utm_source="google", utm_medium="cpc"),
    ], tmp_path / "events.jsonl")  # fmt: skip
    checks = checks_for(settings, [])
    assert checks["paid sessions without a cost row"].ok
    assert checks["share of cost matched to sessions"].ok


def test_a_site_whose_currency_has_no_rate_is_flagged(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", site={"blog.example": SiteSettings(currency="GBP")})
    import_events(settings, [event("a", "page_view", T0, "v1")], tmp_path / "events.jsonl")
    check = checks_for(settings, [])["amounts in the reporting currency"]
    assert not check.ok
    assert check.detail.endswith(
        "sites whose own currency has no rate (no reporting-currency totals): blog.example"
    )


def test_a_check_lists_at_most_ten_campaigns_from_the_warehouse(tmp_path: Path) -> None:
    """The SQL hands over the first MAX_LISTED names and the count, never every name (an
    anonymous visitor makes a new campaign per request)."""
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event(f"e{i}", "page_view", T0, f"v{i}", utm_source="google", utm_medium="cpc",
              utm_campaign=f"c{i:02d}")
        for i in range(MAX_LISTED + 5)
    ], tmp_path / "events.jsonl")  # fmt: skip
    load_costs(settings, [cost(DAY, "shop.example", "google", "cpc", "brand", "30.00")])
    built = build_day(settings, DAY)
    (row,) = [row for row in built.quality if row[0] == "paid sessions without a cost row"]
    assert row[3] == tuple(f"google/cpc/c{i:02d}" for i in range(MAX_LISTED))
    assert row[4] == MAX_LISTED + 5
    check = Check.listing(row)
    assert check.detail.endswith(": " + ", ".join(row[3]) + " and 5 more")
