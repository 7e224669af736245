"""A site's own time zone and currency in the build manifest and the build window."""

from __future__ import annotations

from datetime import date

from pipeline.config import Settings
from pipeline.config import SiteSettings as Site
from pipeline.lake.paths import BuildWindow
from pipeline.warehouse.manifest import CONFIG_CHANGED, Fingerprint, config_fingerprint

SITES = ["a.example", "b.example"]


def fingerprint(settings: Settings) -> Fingerprint:
    return Fingerprint("lake", "costs", config_fingerprint(settings), "models")


def test_a_sites_zone_or_currency_change_makes_its_days_stale_naming_the_site() -> None:
    before = Settings(sites=SITES, site={"b.example": Site(timezone="Asia/Tokyo")})
    moved = Settings(sites=SITES, site={"b.example": Site(timezone="Europe/Berlin")})
    priced = Settings(
        sites=SITES,
        site={"b.example": Site(timezone="Asia/Tokyo", currency="JPY")},
        currency_rates={"JPY": 0.0065},
    )
    assert fingerprint(before).reasons_against(fingerprint(before)) == []
    assert fingerprint(moved).reasons_against(fingerprint(before)) == [
        f"{CONFIG_CHANGED} (b.example time zone Asia/Tokyo -> Europe/Berlin)"
    ]
    # The currency, and the rates that come with it (global settings: no site to name).
    assert fingerprint(priced).reasons_against(fingerprint(before)) == [
        f"{CONFIG_CHANGED} (b.example currency USD -> JPY)"
    ]
    # The global zone moves every site that keeps it.
    berlin = Settings(sites=SITES, timezone="Europe/Berlin", site=before.site)
    assert fingerprint(berlin).reasons_against(fingerprint(before)) == [
        f"{CONFIG_CHANGED} (a.example time zone UTC -> Europe/Berlin)"
    ]


def test_a_fingerprint_recorded_before_sites_had_zones_is_stale_without_names() -> None:
    older = Fingerprint("lake", "costs", "0123456789abcdef0123456789abcdef", "models")
    now = fingerprint(Settings(sites=SITES))
    assert now.reasons_against(older) == [CONFIG_CHANGED]


def test_the_build_window_reaches_two_more_partitions_each_side_for_a_site_zone() -> None:
    day = date(2026, 11, 10)
    same = BuildWindow.from_settings(Settings(sites=SITES))
    zoned = BuildWindow.from_settings(
        Settings(sites=SITES, site={"b.example": Site(timezone="Pacific/Kiritimati")})
    )
    assert same.events(day)[0] == date(2026, 11, 4) and same.events(day)[-1] == date(2026, 11, 14)
    assert zoned.events(day)[0] == date(2026, 11, 2) and zoned.events(day)[-1] == date(2026, 11, 16)
    assert zoned.touches(day)[-1] == date(2026, 11, 12)
