"""Validation's site rules: the largest value one event may carry (in the reporting
currency, per site) and whether anonymous purchases and refunds count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings, SiteSettings, load_settings
from pipeline.errors import ConfigError
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.site_rules import SiteRules
from pipeline.events.timestamps import history_window, parse_event_ts
from pipeline.events.validation import validate_event
from tests.unit.test_config import write

NOW = parse_event_ts("2026-11-20T12:00:00Z")
WINDOW = history_window(Settings().validation)
RULES = SiteRules.from_settings(
    Settings(
        sites=["shop.example", "blog.example", "gtag.example"],
        currency_rates={"EUR": 1.25},
        site={
            "blog.example": SiteSettings(max_event_value=500),
            "gtag.example": SiteSettings(anonymous_purchases=False),
        },
    )
)


def event(**fields: Any) -> dict[str, Any]:
    base = {"event_id": "e1", "event_name": "purchase", "event_ts": "2026-11-20T11:00:00Z",
            "site_id": "shop.example", "visitor_id": "v1"}  # fmt: skip
    return {**base, **fields}


def outcome(**fields: Any) -> str:
    try:
        validate_event(event(**fields), now_micros=NOW, window=WINDOW, rules=RULES)
    except Rejected as rejected:
        return rejected.reason
    return "accepted"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"value": 1_000_000}, "accepted"),
        ({"value": 1_000_000.01}, Reason.VALUE_TOO_LARGE),
        ({"value": 9e15}, Reason.VALUE_TOO_LARGE),
        ({"value": 800_000, "currency": "EUR"}, "accepted"),  # 1,000,000 USD
        ({"value": 800_001, "currency": "EUR"}, Reason.VALUE_TOO_LARGE),
        ({"value": 1_000_000, "currency": "USD"}, "accepted"),
        # Without a rate, the same number in its own units.
        ({"value": 1_000_000, "currency": "JPY"}, "accepted"),
        ({"value": 1_000_001, "currency": "JPY"}, Reason.VALUE_TOO_LARGE),
        # Either way: a negative value of a goal event is bounded too.
        ({"event_name": "sign_up", "value": -1_000_001}, Reason.VALUE_TOO_LARGE),
        # A site's own bound.
        ({"site_id": "blog.example", "value": 500}, "accepted"),
        ({"site_id": "blog.example", "value": 500.01}, Reason.VALUE_TOO_LARGE),
        # A site that counts purchases and refunds from authenticated routes only.
        ({"site_id": "gtag.example", "trust": "anonymous"}, Reason.ANONYMOUS_PURCHASE),
        ({"site_id": "gtag.example", "trust": "anonymous", "event_name": "refund"},
         Reason.ANONYMOUS_PURCHASE),
        ({"site_id": "gtag.example", "trust": "anonymous", "event_name": "page_view"},
         "accepted"),
        ({"site_id": "gtag.example", "trust": "authenticated"}, "accepted"),
        ({"site_id": "gtag.example"}, "accepted"),  # no trust: authenticated
        ({"trust": "anonymous"}, "accepted"),  # the default: anonymous purchases count
        ({"trust": "root"}, Reason.BAD_ENUM),
        # An anonymous event's value is never negative, whatever its name; an
        # authenticated goal event's may be (a correction, as GA4 allows).
        ({"event_name": "sign_up", "trust": "anonymous", "value": -40_000},
         Reason.NEGATIVE_AMOUNT),
        ({"event_name": "sign_up", "trust": "anonymous", "value": -0.01},
         Reason.NEGATIVE_AMOUNT),
        ({"event_name": "sign_up", "trust": "anonymous", "value": 0}, "accepted"),
        ({"event_name": "sign_up", "trust": "authenticated", "value": -400}, "accepted"),
        ({"event_name": "sign_up", "value": -400}, "accepted"),
        ({"trust": "authenticated", "value": -400}, Reason.NEGATIVE_AMOUNT),  # a purchase
        # At most 31 days of engagement per event: a session's sum stays within BIGINT.
        ({"engagement_time_ms": 2_678_400_000}, "accepted"),
        ({"engagement_time_ms": 2_678_400_001}, Reason.NUMBER_TOO_LARGE),
    ],
)  # fmt: skip
def test_site_rules(fields: dict[str, Any], expected: str) -> None:
    assert outcome(**fields) == expected


def test_the_default_rules_bound_every_caller_without_settings() -> None:
    with pytest.raises(Rejected) as caught:
        validate_event(event(value=1e6 + 1), now_micros=NOW, window=WINDOW)
    assert caught.value.reason == Reason.VALUE_TOO_LARGE


def test_the_site_section_is_checked_like_ga4s(tmp_path: Path) -> None:
    def load(text: str) -> Settings:
        return load_settings(write(tmp_path, text), environ={})

    settings = load('sites = ["shop.example"]\n[site."shop.example"]\nanonymous_purchases = false\n'
                    "max_event_value = 250.5\n[validation]\nmax_event_value = 1e9\n")  # fmt: skip
    assert settings.site_settings("shop.example").anonymous_purchases is False
    assert settings.max_event_value("shop.example") == 250.5
    assert settings.site_settings("other.example") == SiteSettings()
    with pytest.raises(ConfigError, match=r"\[site\] names sites not in `sites`"):
        load('sites = ["shop.example"]\n[site."blog.example"]\nanonymous_purchases = false\n')
    with pytest.raises(ConfigError, match="max_event_value"):
        load("[validation]\nmax_event_value = 1e13\n")
    with pytest.raises(ConfigError, match="anonymus_purchases: unknown key"):
        load('sites = ["shop.example"]\n[site."shop.example"]\nanonymus_purchases = false\n')
