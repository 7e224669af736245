"""Session source / medium and GA4's default channel group.

The source categories (search, social, shopping, video, email) are data: one file per
category under data/source_categories/, one lower-case source name or host per line,
"#" comments, "name.*" for any top-level domain (full description in search.txt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
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

_CATEGORY_DIR = Path(__file__).parent / "data" / "source_categories"
_IGNORED_HOST_PREFIXES = ("www.", "m.")
_ANY_TLD_SUFFIX = ".*"


@dataclass(frozen=True)
class _SourceCategory:
    names: frozenset[str]  # source names and hosts, matched exactly
    any_tld_names: frozenset[str]  # "google" for the entry "google.*"

    def matches(self, source: str) -> bool:
        return any(self._matches_exactly(variant) for variant in _host_variants(source))

    def _matches_exactly(self, source: str) -> bool:
        if source in self.names:
            return True
        name, _, tld = source.partition(".")
        # A top-level domain is one or two non-empty labels: "de", "co.uk".
        tld_labels = tld.split(".")
        return name in self.any_tld_names and len(tld_labels) <= 2 and all(tld_labels)


@cache
def _category(name: str) -> _SourceCategory:
    entries: set[str] = set()
    for line in (_CATEGORY_DIR / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        entry = line.partition("#")[0].strip().lower()
        if entry:
            entries.add(entry)
    wildcards = {entry for entry in entries if entry.endswith(_ANY_TLD_SUFFIX)}
    return _SourceCategory(
        names=frozenset(entries - wildcards),
        any_tld_names=frozenset(entry.removesuffix(_ANY_TLD_SUFFIX) for entry in wildcards),
    )


def _host_variants(source: str) -> tuple[str, ...]:
    for prefix in _IGNORED_HOST_PREFIXES:
        if source.startswith(prefix):
            return (source, source.removeprefix(prefix))
    return (source,)


def default_channel_group(source: str | None, medium: str | None, campaign: str | None) -> str:
    """GA4's default channel group for a session's source, medium and campaign."""
    source = _normalise(source)
    medium = _normalise(medium)
    campaign = _normalise(campaign)

    is_paid = bool(_PAID_MEDIUM.match(medium))
    is_shopping = _category("shopping").matches(source) or bool(_SHOPPING_CAMPAIGN.match(campaign))
    is_search = _category("search").matches(source)
    is_social = _category("social").matches(source)
    is_video = _category("video").matches(source)

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
    if _category("email").matches(source) or _category("email").matches(medium):
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
    search = _category("search")
    if search.matches(referrer):
        # The engine's name is the first label listed as a name: www.google.de -> google.
        engine = next((label for label in referrer.split(".") if label in search.names), referrer)
        return (engine, "organic")
    return (referrer, "referral")


def _normalise(value: str | None) -> str:
    return (value or "").strip().lower()


def _normalise_host(host: str | None) -> str:
    # "www." is the same site; a trailing dot is the same DNS name.
    return _normalise(host).rstrip(".").removeprefix("www.")
