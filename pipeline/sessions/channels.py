"""Session source / medium and GA4's default channel group.

The source categories (search, social, shopping, video) are data: Google's published
list, data/ga4_source_categories.csv (source, source_category), shipped as is. The email
rule's four names are GA4's own (no list).
"""

from __future__ import annotations

import csv
import re
from functools import cache, lru_cache
from pathlib import Path

DIRECT = "Direct"
CROSS_NETWORK = "Cross-network"
PAID_SHOPPING = "Paid Shopping"
PAID_SEARCH = "Paid Search"
PAID_SOCIAL = "Paid Social"
PAID_VIDEO = "Paid Video"
DISPLAY = "Display"
PAID_OTHER = "Paid Other"
ORGANIC_SHOPPING = "Organic Shopping"
ORGANIC_SOCIAL = "Organic Social"
ORGANIC_VIDEO = "Organic Video"
ORGANIC_SEARCH = "Organic Search"
REFERRAL = "Referral"
EMAIL = "Email"
AFFILIATES = "Affiliates"
AUDIO = "Audio"
SMS = "SMS"
MOBILE_PUSH_NOTIFICATIONS = "Mobile Push Notifications"
UNASSIGNED = "Unassigned"

# In the order default_channel_group tries them: the first matching rule wins.
CHANNEL_GROUPS = (
    DIRECT,
    CROSS_NETWORK,
    PAID_SHOPPING,
    PAID_SEARCH,
    PAID_SOCIAL,
    PAID_VIDEO,
    DISPLAY,
    PAID_OTHER,
    ORGANIC_SHOPPING,
    ORGANIC_SOCIAL,
    ORGANIC_VIDEO,
    ORGANIC_SEARCH,
    REFERRAL,
    EMAIL,
    AFFILIATES,
    AUDIO,
    SMS,
    MOBILE_PUSH_NOTIFICATIONS,
    UNASSIGNED,
)

DIRECT_SOURCE = "(direct)"
NONE_MEDIUM = "(none)"
NOT_SET = "(not set)"

# GA4's own regular expressions, verbatim.
_PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
_DISPLAY_MEDIUMS = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIUMS = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_REFERRAL_MEDIUMS = frozenset({"referral", "app", "link"})

# Auto-tagging click ids that always mean a paid ad click. fbclid is not here: Facebook
# adds it to organic links too.
_PAID_CLICK_SOURCE_MEDIUM = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "dclid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
}

_DATA_DIR = Path(__file__).parent / "data"
# Google's published source categories (shipped as facts): source -> category.
_GA4_CATEGORIES = _DATA_DIR / "ga4_source_categories.csv"
_GA4_CATEGORY_NAMES = {
    "SOURCE_CATEGORY_SEARCH": "search",
    "SOURCE_CATEGORY_SOCIAL": "social",
    "SOURCE_CATEGORY_SHOPPING": "shopping",
    "SOURCE_CATEGORY_VIDEO": "video",
}


_IGNORED_HOST_PREFIXES = ("www.", "m.")
_EMAIL_NAMES = frozenset({"email", "e-mail", "e_mail", "e mail"})  # GA4's email rule


@cache
def _source_categories() -> dict[str, str]:
    """Every listed source (lower case) -> "search", "social", "shopping" or "video"."""
    with _GA4_CATEGORIES.open(encoding="utf-8", newline="") as handle:
        return {
            row["source"].strip().lower(): _GA4_CATEGORY_NAMES[row["source_category"]]
            for row in csv.DictReader(handle)
        }


@lru_cache(maxsize=65_536)
def source_category(source: str) -> str | None:
    """The GA4 source category of a (normalised) source, the most specific listing first:
    the source itself, then its parent domains (a referrer host such as l.facebook.com);
    failing those, a listed bare name with a top-level domain ("google" for google.de or
    www.google.co.uk, but not for accounts.google.com)."""
    listed = _source_categories()
    labels = source.split(".")
    for start in range(len(labels)):
        suffix = ".".join(labels[start:])
        if suffix in listed and (start == 0 or "." in suffix):
            return listed[suffix]
    for prefix in _IGNORED_HOST_PREFIXES:
        source = source.removeprefix(prefix)
    name, _, tld = source.partition(".")
    tld_labels = tld.split(".")  # one or two: "de", "co.uk"
    if name in listed and len(tld_labels) <= 2 and all(tld_labels):
        return listed[name]
    return None


def default_channel_group(source: str | None, medium: str | None, campaign: str | None) -> str:
    """GA4's default channel group for a session's source, medium and campaign."""
    source = _normalise(source)
    medium = _normalise(medium)
    campaign = _normalise(campaign)

    is_paid = bool(_PAID_MEDIUM.match(medium))
    category = source_category(source)
    is_shopping = category == "shopping" or bool(_SHOPPING_CAMPAIGN.match(campaign))
    is_search = category == "search"
    is_social = category == "social"
    is_video = category == "video"

    # Missing values count as GA4's placeholders: a hit with neither is direct.
    if source in (DIRECT_SOURCE, "") and medium in (NONE_MEDIUM, NOT_SET, ""):
        return DIRECT
    if "cross-network" in campaign:
        return CROSS_NETWORK
    if is_paid:
        if is_shopping:
            return PAID_SHOPPING
        if is_search:
            return PAID_SEARCH
        if is_social:
            return PAID_SOCIAL
        if is_video:
            return PAID_VIDEO
    if medium in _DISPLAY_MEDIUMS:
        return DISPLAY
    if is_paid:
        return PAID_OTHER
    if is_shopping:
        return ORGANIC_SHOPPING
    if is_social or medium in _SOCIAL_MEDIUMS:
        return ORGANIC_SOCIAL
    if is_video or "video" in medium:
        return ORGANIC_VIDEO
    if is_search or medium == "organic":
        return ORGANIC_SEARCH
    if medium in _REFERRAL_MEDIUMS:
        return REFERRAL
    if source in _EMAIL_NAMES or medium in _EMAIL_NAMES:
        return EMAIL
    if medium == "affiliate":
        return AFFILIATES
    if medium == "audio":
        return AUDIO
    if "sms" in (source, medium):
        return SMS
    if (
        medium.endswith("push")
        or "mobile" in medium
        or "notification" in medium
        or source == "firebase"
    ):
        return MOBILE_PUSH_NOTIFICATIONS
    return UNASSIGNED


def source_medium(
    utm_source: str | None,
    utm_medium: str | None,
    click_id_type: str | None,
    referrer_host: str | None,
    site_host: str | None,
) -> tuple[str, str]:
    """A session's (source, medium), derived the way GA4 does.

    Explicit utm parameters win, then an auto-tagging click id, then the referrer.
    """
    utm_source = (utm_source or "").strip()
    utm_medium = (utm_medium or "").strip()
    if utm_source or utm_medium:
        return (utm_source or NOT_SET, utm_medium or NOT_SET)

    paid_click = _PAID_CLICK_SOURCE_MEDIUM.get(_normalise(click_id_type))
    if paid_click:
        return paid_click

    referrer = _normalise_host(referrer_host)
    site = _normalise_host(site_host)
    if not referrer or (site and (referrer == site or referrer.endswith(f".{site}"))):
        return (DIRECT_SOURCE, NONE_MEDIUM)
    if source_category(referrer) == "search":
        # The engine's name is the first label listed as a search source, as GA4 names
        # it: www.google.de -> google, uk.search.yahoo.com -> yahoo.
        listed = _source_categories()
        engine = next(
            (label for label in referrer.split(".") if listed.get(label) == "search"), referrer
        )
        return (engine, "organic")
    return (referrer, "referral")


def _normalise(value: str | None) -> str:
    return (value or "").strip().lower()


def _normalise_host(host: str | None) -> str:
    # "www." is the same site; a trailing dot is the same DNS name.
    return _normalise(host).rstrip(".").removeprefix("www.")
