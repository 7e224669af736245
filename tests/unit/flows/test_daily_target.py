"""`run daily`'s default target: the latest day that has ended in every site's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flows.daily import yesterday
from pipeline.config import Settings
from pipeline.config import SiteSettings as Site


def test_yesterday_waits_for_the_site_whose_day_ends_last() -> None:
    both = Settings(
        sites=["utc.example", "la.example"],
        site={"la.example": Site(timezone="America/Los_Angeles")},
    )
    # 02:30 UTC on Dec 8 is 18:30 on Dec 7 in Los Angeles (UTC-8): its Dec 7 is not over.
    now = datetime(2026, 12, 8, 2, 30, tzinfo=UTC)
    assert yesterday(both, now) == date(2026, 12, 6)
    assert yesterday(Settings(sites=["utc.example"]), now) == date(2026, 12, 7)
    # 08:30 UTC: Los Angeles' Dec 7 ended half an hour ago.
    assert yesterday(both, datetime(2026, 12, 8, 8, 30, tzinfo=UTC)) == date(2026, 12, 7)


def test_a_site_east_of_the_global_zone_does_not_hold_yesterday_back() -> None:
    tokyo = Settings(
        sites=["utc.example", "tokyo.example"],
        site={"tokyo.example": Site(timezone="Asia/Tokyo")},
    )
    # 20:00 UTC on Dec 7 is 05:00 on Dec 8 in Tokyo; UTC's Dec 7 has not ended.
    assert yesterday(tokyo, datetime(2026, 12, 7, 20, 0, tzinfo=UTC)) == date(2026, 12, 6)
