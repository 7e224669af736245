from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pipeline.sessions.channels import (
    AFFILIATES,
    AUDIO,
    CHANNEL_GROUPS,
    CROSS_NETWORK,
    DIRECT,
    DISPLAY,
    EMAIL,
    MOBILE_PUSH_NOTIFICATIONS,
    ORGANIC_SEARCH,
    ORGANIC_SHOPPING,
    ORGANIC_SOCIAL,
    ORGANIC_VIDEO,
    PAID_OTHER,
    PAID_SEARCH,
    PAID_SHOPPING,
    PAID_SOCIAL,
    PAID_VIDEO,
    REFERRAL,
    SMS,
    UNASSIGNED,
    default_channel_group,
    source_medium,
)

# (source, medium, campaign, channel group). Every rule at least once, then the cases
# where two rules could apply and GA4's order decides.
CHANNEL_CASES = [
    # Direct
    ("(direct)", "(none)", None, DIRECT),
    ("(direct)", "(not set)", None, DIRECT),
    (None, None, None, DIRECT),
    ("(Direct)", " (None) ", "", DIRECT),
    # Cross-network
    ("google", "cpc", "pmax-cross-network", CROSS_NETWORK),
    ("google", "cpc", "Cross-Network Spring", CROSS_NETWORK),
    # Paid Shopping
    ("amazon", "cpc", None, PAID_SHOPPING),
    ("www.amazon.co.uk", "ppc", None, PAID_SHOPPING),
    ("foo", "cpc", "summer-shopping", PAID_SHOPPING),
    ("foo", "paid", "eshop-launch", PAID_SHOPPING),
    ("google", "cpc", "shop-sale", PAID_SHOPPING),  # campaign beats the search source
    ("ebay.de", "retargeting", None, PAID_SHOPPING),
    # Paid Search
    ("google", "cpc", None, PAID_SEARCH),
    ("Google", "CPC", None, PAID_SEARCH),
    ("bing", "ppc", None, PAID_SEARCH),
    ("www.google.de", "paidsearch", None, PAID_SEARCH),
    ("google", "cpc", "workshop", PAID_SEARCH),  # "workshop" is no shopping campaign
    ("google", "cpm", None, PAID_SEARCH),  # paid search before display
    # Paid Social
    ("facebook", "cpc", None, PAID_SOCIAL),
    ("l.facebook.com", "paid_social", None, PAID_SOCIAL),
    ("linkedin", "cpc", None, PAID_SOCIAL),
    ("t.co", "paid", None, PAID_SOCIAL),
    # Paid Video
    ("youtube", "cpc", None, PAID_VIDEO),
    ("m.youtube.com", "cpv", None, PAID_VIDEO),
    # Display
    ("foo", "display", None, DISPLAY),
    ("foo", "banner", None, DISPLAY),
    ("foo", "expandable", None, DISPLAY),
    ("foo", "interstitial", None, DISPLAY),
    ("foo", "cpm", None, DISPLAY),  # paid, but display comes before paid other
    ("facebook", "display", None, DISPLAY),  # display medium is not paid-regex
    # Paid Other
    ("foo", "cpc", None, PAID_OTHER),
    ("foo", "paid-whatever", None, PAID_OTHER),
    ("newsletter", "cpc", None, PAID_OTHER),
    # Organic Shopping
    ("amazon.com", "referral", None, ORGANIC_SHOPPING),
    ("foo", "bar", "shopping-week", ORGANIC_SHOPPING),
    ("shopping.yahoo.com", "referral", None, ORGANIC_SHOPPING),  # shopping before search
    # Organic Social
    ("facebook", "social", None, ORGANIC_SOCIAL),
    ("m.facebook.com", "referral", None, ORGANIC_SOCIAL),
    ("lnkd.in", "referral", None, ORGANIC_SOCIAL),
    ("foo", "social-network", None, ORGANIC_SOCIAL),
    ("foo", "sm", None, ORGANIC_SOCIAL),
    ("foo", "social media", None, ORGANIC_SOCIAL),
    ("reddit", "email", None, ORGANIC_SOCIAL),  # social source before the email rule
    ("pinterest.co.uk", "referral", None, ORGANIC_SOCIAL),
    # Organic Video
    ("youtube.com", "referral", None, ORGANIC_VIDEO),
    ("foo", "video", None, ORGANIC_VIDEO),
    ("foo", "online-video-ads", None, ORGANIC_VIDEO),
    # Organic Search
    ("bing", "organic", None, ORGANIC_SEARCH),
    ("google", "organic", None, ORGANIC_SEARCH),
    ("foo", "organic", None, ORGANIC_SEARCH),
    ("www.google.co.uk", "referral", None, ORGANIC_SEARCH),
    ("duckduckgo.com", "referral", None, ORGANIC_SEARCH),
    ("yahoo", "(not set)", None, ORGANIC_SEARCH),
    # Referral
    ("example.org", "referral", None, REFERRAL),
    ("foo", "app", None, REFERRAL),
    ("foo", "link", None, REFERRAL),
    ("accounts.google.com", "referral", None, REFERRAL),  # not a search host
    ("google.evil.example.com", "referral", None, REFERRAL),  # "google.*" is one TLD
    # Email
    ("newsletter", "email", None, EMAIL),
    ("email", "foo", None, EMAIL),
    ("foo", "e-mail", None, EMAIL),
    ("foo", "e_mail", None, EMAIL),
    ("foo", "E Mail", None, EMAIL),
    ("newsletter", "referral", None, REFERRAL),  # referral before email
    # Affiliates
    ("foo", "affiliate", None, AFFILIATES),
    # Audio
    ("spotify", "audio", None, AUDIO),
    # SMS
    ("sms", "foo", None, SMS),
    ("foo", "SMS", None, SMS),
    # Mobile Push Notifications
    ("foo", "web-push", None, MOBILE_PUSH_NOTIFICATIONS),
    ("foo", "mobile", None, MOBILE_PUSH_NOTIFICATIONS),
    ("foo", "in-app-notification", None, MOBILE_PUSH_NOTIFICATIONS),
    ("firebase", "foo", None, MOBILE_PUSH_NOTIFICATIONS),
    # Unassigned
    ("foo", "bar", None, UNASSIGNED),
    ("(direct)", "organic-ish", None, UNASSIGNED),
    ("(not set)", "(not set)", None, UNASSIGNED),
    ("foo", None, None, UNASSIGNED),
]


@pytest.mark.parametrize(("source", "medium", "campaign", "expected"), CHANNEL_CASES)
def test_default_channel_group(
    source: str | None, medium: str | None, campaign: str | None, expected: str
) -> None:
    assert default_channel_group(source, medium, campaign) == expected


def test_every_channel_group_is_covered() -> None:
    assert {case[3] for case in CHANNEL_CASES} == set(CHANNEL_GROUPS)
    assert len(set(CHANNEL_GROUPS)) == len(CHANNEL_GROUPS)


@pytest.mark.parametrize(
    ("utm_source", "utm_medium", "click_id_type", "referrer_host", "expected"),
    [
        # Explicit utm parameters win over everything else.
        ("newsletter", "email", "gclid", "www.google.com", ("newsletter", "email")),
        ("  Newsletter ", None, None, None, ("Newsletter", "(not set)")),
        (None, "email", None, None, ("(not set)", "email")),
        ("", "", None, None, ("(direct)", "(none)")),
        # Then auto-tagging click ids.
        (None, None, "gclid", "www.google.com", ("google", "cpc")),
        (None, None, "gbraid", None, ("google", "cpc")),
        (None, None, "wbraid", None, ("google", "cpc")),
        (None, None, "dclid", None, ("google", "cpc")),
        (None, None, "msclkid", "www.bing.com", ("bing", "cpc")),
        # fbclid and friends say nothing about paid: the referrer decides.
        (None, None, "fbclid", "l.facebook.com", ("l.facebook.com", "referral")),
        (None, None, "fbclid", None, ("(direct)", "(none)")),
        (None, None, "ttclid", "www.tiktok.com", ("tiktok.com", "referral")),
        # Then search engine referrers, named after the engine.
        (None, None, None, "www.google.com", ("google", "organic")),
        (None, None, None, "www.google.co.uk", ("google", "organic")),
        (None, None, None, "news.google.com", ("google", "organic")),
        (None, None, None, "uk.search.yahoo.com", ("yahoo", "organic")),
        (None, None, None, "duckduckgo.com", ("duckduckgo", "organic")),
        (None, None, None, "search.brave.com", ("search.brave.com", "referral")),  # unlisted
        (None, None, None, "m.baidu.com", ("baidu", "organic")),
        (None, None, None, "WWW.Bing.com", ("bing", "organic")),
        (None, None, None, "so.com", ("so.com", "organic")),  # no name entry: the host
        # Then any other external referrer.
        (None, None, None, "www.reddit.com", ("reddit.com", "referral")),
        (None, None, None, "accounts.google.com", ("accounts.google.com", "referral")),
        (None, None, None, "partner.example.org", ("partner.example.org", "referral")),
        # No referrer, or the site itself: direct.
        (None, None, None, None, ("(direct)", "(none)")),
        (None, None, None, "", ("(direct)", "(none)")),
        (None, None, None, "example.com", ("(direct)", "(none)")),
        (None, None, None, "www.example.com", ("(direct)", "(none)")),
        (None, None, None, "shop.example.com", ("(direct)", "(none)")),
        (None, None, None, "example.com.", ("(direct)", "(none)")),
        (None, None, None, "notexample.com", ("notexample.com", "referral")),
    ],
)
def test_source_medium(
    utm_source: str | None,
    utm_medium: str | None,
    click_id_type: str | None,
    referrer_host: str | None,
    expected: tuple[str, str],
) -> None:
    assert (
        source_medium(utm_source, utm_medium, click_id_type, referrer_host, "www.example.com")
        == expected
    )


def test_without_a_site_host_every_referrer_is_external() -> None:
    assert source_medium(None, None, None, "example.com", None) == ("example.com", "referral")


@pytest.mark.parametrize(
    ("referrer_host", "channel_group"),
    [
        ("www.google.com", ORGANIC_SEARCH),
        ("l.facebook.com", ORGANIC_SOCIAL),
        ("www.youtube.com", ORGANIC_VIDEO),
        ("www.amazon.de", ORGANIC_SHOPPING),
        ("partner.example.org", REFERRAL),
        (None, DIRECT),
    ],
)
def test_derived_source_medium_feeds_the_channel_group(
    referrer_host: str | None, channel_group: str
) -> None:
    source, medium = source_medium(None, None, None, referrer_host, "example.com")
    assert default_channel_group(source, medium, None) == channel_group


GOOGLE_LIST = Path(__file__).resolve().parents[3] / "pipeline" / "sessions" / "data"
CATEGORY_CHANNELS = {
    "SOURCE_CATEGORY_SEARCH": (PAID_SEARCH, ORGANIC_SEARCH),
    "SOURCE_CATEGORY_SOCIAL": (PAID_SOCIAL, ORGANIC_SOCIAL),
    "SOURCE_CATEGORY_SHOPPING": (PAID_SHOPPING, ORGANIC_SHOPPING),
    "SOURCE_CATEGORY_VIDEO": (PAID_VIDEO, ORGANIC_VIDEO),
}


def google_rows() -> list[dict[str, str]]:
    with (GOOGLE_LIST / "ga4_source_categories.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_shipped_list_is_googles_published_list() -> None:
    rows = google_rows()
    assert len(rows) == 819
    counts = Counter(row["source_category"] for row in rows)
    assert counts == {"SOURCE_CATEGORY_SEARCH": 129, "SOURCE_CATEGORY_SOCIAL": 592,
                      "SOURCE_CATEGORY_SHOPPING": 52, "SOURCE_CATEGORY_VIDEO": 46}  # fmt: skip
    assert len({row["source"].lower() for row in rows}) == len(rows)


def test_every_listed_source_classifies_into_its_category_as_utm_source() -> None:
    wrong = []
    for row in google_rows():
        paid, organic = CATEGORY_CHANNELS[row["source_category"]]
        got = (default_channel_group(row["source"], "cpc", None),
               default_channel_group(row["source"], "organic", None))  # fmt: skip
        if got != (paid, organic):
            wrong.append((row["source"], got))
    assert wrong == []


def test_every_listed_host_classifies_into_its_category_as_referrer_subdomains_too() -> None:
    wrong = []
    hosts = [row for row in google_rows() if "." in row["source"] and " " not in row["source"]]
    assert len(hosts) > 500
    for row in hosts:
        _, organic = CATEGORY_CHANNELS[row["source_category"]]
        for host in (row["source"], f"www.{row['source']}", f"sub.{row['source']}"):
            source, medium = source_medium(None, None, None, host, "shop.example")
            if default_channel_group(source, medium, None) != organic:
                wrong.append((host, source, medium))
    assert wrong == []
