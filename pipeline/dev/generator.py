"""Seeded synthetic traffic: canonical events (JSON Lines) and marketing costs (CSV).

Used by `sessionflow generate`, the demo, the tests and the benchmarks. One config gives
byte-identical files: every draw comes from a `random.Random(seed)` (never the global
generator, never the wall clock), in a fixed order.

The model in short (the constants below carry the numbers):
- Days: a weekday factor (a consumer shop: busiest on Sunday, quietest on Friday) times
  a uniform +-15 % jitter around `events_per_day`. Hours follow a UTC curve, low at
  night, with a lunchtime plateau and an evening peak.
- Sessions: a channel (paid search, paid social, email, display and affiliates have
  costs; organic search, organic social, referral and direct do not), 1..N page views
  with many bounces, gaps of seconds to minutes, a few sign-ups and purchases. Paid
  landing pages always carry utm fields, often an ad click id type (gclid...) as well.
- Visitors: ~40 % "GA4 style", with a stable id, a `session_id` and sometimes a
  `user_id`; the rest "cookie-free", with an id that rotates every day. Some come back
  later the same day; GA4-style visitors also on later days.
- Traps: ~0.7 % exact duplicates re-sent a little later, ~1.5 % late events that arrive
  minutes to two hours after their timestamp.

Events are streamed in arrival order. Only one day's sorted session start times and the
events not yet due (sessions in progress, late and duplicate events) are in memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import random
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from heapq import heappop, heappush
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO, Final
from urllib.parse import quote_plus

from pipeline.errors import ConfigError
from pipeline.warehouse.cost_schema import COLUMNS

COST_COLUMNS: Final = COLUMNS  # the cost file format is the loader's

_US: Final = 1_000_000
_MINUTE_US: Final = 60 * _US
_HOUR_US: Final = 60 * _MINUTE_US
_DAY_US: Final = 24 * _HOUR_US

# Share of traffic per UTC hour: the audience sits mostly in one time zone, so nights
# are quiet, with a lunchtime plateau and the busiest hours in the evening.
_HOUR_WEIGHTS: Final = (
    1.2, 0.7, 0.45, 0.35, 0.35, 0.5, 1.0, 2.0, 3.2, 4.2, 4.8, 5.2,
    5.6, 5.4, 5.0, 4.9, 5.0, 5.3, 5.8, 6.4, 6.8, 6.2, 4.6, 2.6,
)  # fmt: skip
# Monday first. A consumer shop: Sunday is the busiest day, Friday the quietest.
# Normalised to a mean of 1, so whole weeks average `events_per_day`.
_DOW_RAW: Final = (1.02, 1.0, 0.98, 0.97, 0.92, 1.0, 1.11)
_DOW_WEIGHTS: Final = tuple(w * 7 / sum(_DOW_RAW) for w in _DOW_RAW)
_DAY_JITTER: Final = 0.15

_P_GA4: Final = 0.40  # new visitors with stable ids (GA4 style)
_P_LOGGED_IN: Final = 0.20  # of those, known by a user_id from the start
_P_POOL_RETURN: Final = 0.30  # GA4-style sessions by a visitor seen before (any day)
_POOL_SIZE: Final = 50_000  # remembered GA4-style visitors per site: bounded memory
_P_SAME_DAY_RETURN: Final = 0.12  # sessions followed by another visit the same day
_RETURN_GAP_US: Final = (35 * _MINUTE_US, 6 * _HOUR_US)  # beyond the 30 min timeout
_SESSION_BUSY_US: Final = 30 * _MINUTE_US + _US  # no new session within the timeout

_P_LATE: Final = 0.015
_LATE_DELAY_US: Final = (2 * _MINUTE_US, 2 * _HOUR_US)
_P_DUPLICATE: Final = 0.007
_DUPLICATE_DELAY_US: Final = (_US, 5 * _MINUTE_US)  # a retry after a lost response

# Timestamp styles, drawn per session (a client sends them all the same way): UTC "Z",
# the same instant with a local offset, or integer epoch microseconds (None).
_TS_STYLES: Final = (
    ("Z", 0),
    ("+02:00", 2 * _HOUR_US),
    ("+01:00", _HOUR_US),
    ("-05:00", -5 * _HOUR_US),
    ("+05:30", 5 * _HOUR_US + 30 * _MINUTE_US),
    None,
)
_TS_STYLE_SHARES: Final = (0.93, 0.015, 0.01, 0.01, 0.005, 0.03)

_P_OTHER_CURRENCY: Final = 0.04  # purchases paid in a second currency
_PURCHASE_VALUE: Final = (70.0, 0.6, 15.0, 400.0)  # log-normal median, sigma; clamped
_MAX_EXTRA_PAGES: Final = 40
_PAGE_GAP_S: Final = (5.0, 50.0, 900.0)  # minimum, mean extra, cap: always < 30 min
_EXIT_PAGE_ENGAGEMENT_S: Final = 25.0  # mean time on the last page
_CONVERSION_DELAY_US: Final = (300_000, 3 * _US)  # after its page view, < the min gap

_DEVICE_SHARES: Final = {"desktop": 0.38, "mobile": 0.58, "tablet": 0.04}
# (browser, os) pairs that exist on each device, with their shares on it.
_BROWSER_OS: Final = {
    "desktop": (
        ("Chrome", "Windows", 0.42),
        ("Edge", "Windows", 0.13),
        ("Firefox", "Windows", 0.06),
        ("Opera", "Windows", 0.02),
        ("Chrome", "macOS", 0.10),
        ("Safari", "macOS", 0.14),
        ("Firefox", "macOS", 0.02),
        ("Chrome", "Linux", 0.03),
        ("Firefox", "Linux", 0.02),
        ("Chrome", "Chrome OS", 0.06),
    ),
    "mobile": (
        ("Safari", "iOS", 0.45),
        ("Chrome", "iOS", 0.06),
        ("Chrome", "Android", 0.38),
        ("Samsung Internet", "Android", 0.09),
        ("Firefox", "Android", 0.02),
    ),
    "tablet": (
        ("Safari", "iOS", 0.60),
        ("Chrome", "Android", 0.30),
        ("Samsung Internet", "Android", 0.10),
    ),
}
_COUNTRY_SHARES: Final = {
    "US": 0.45, "GB": 0.10, "DE": 0.08, "CA": 0.07, "IN": 0.06,
    "FR": 0.05, "AU": 0.04, "BR": 0.04, "NL": 0.03, "ES": 0.03,
}  # fmt: skip

_CATEGORIES: Final = (
    "running", "trail", "hiking", "sneakers", "sandals", "kids", "sale", "accessories",
)  # fmt: skip
_BLOG_POSTS: Final = (
    "how-to-choose-running-shoes",
    "trail-vs-road",
    "marathon-training-plan",
    "caring-for-leather-boots",
)
_PAGES: Final[dict[str, tuple[str, ...]]] = {
    "home": ("/",),
    "product": tuple(f"/products/{n}" for n in range(1000, 1500)),
    "category": tuple(f"/category/{c}" for c in _CATEGORIES),
    "blog": tuple(f"/blog/{p}" for p in _BLOG_POSTS),
    "search": ("/search",),  # its query string is scrubbed before it gets here
    "account": ("/account",),
}
# Where visitors go after the landing page.
_NAVIGATION: Final = {
    "product": 0.50, "category": 0.25, "home": 0.08, "search": 0.07, "blog": 0.05,
    "account": 0.05,
}  # fmt: skip


@dataclass(frozen=True)
class _Campaign:
    name: str
    share: float  # of its source's sessions
    landing: Mapping[str, float]  # page kind -> relative weight
    cpc: float  # cost per click, in the config currency
    ctr: float  # clicks per impression
    terms: tuple[str | None, ...] = (None,)
    contents: tuple[str | None, ...] = (None,)


@dataclass(frozen=True)
class _Source:
    """One way in: a paid source/medium with campaigns (these have costs), or an unpaid
    one recognised by its referrer, or by having none (direct)."""

    channel: str
    weight: float  # share of all sessions
    bounce: float  # share of one-page sessions
    more_pages: float  # continuation probability of the geometric page count
    purchase: float  # share of sessions with a purchase
    sign_up: float  # share of sessions with a sign-up
    referrers: tuple[str | None, ...] = (None,)  # document.referrer of the landing page
    # Ad click id types on the landing page (auto-tagging; the value itself is scrubbed).
    click_ids: tuple[str | None, ...] = (None,)
    landing: Mapping[str, float] = field(default_factory=lambda: {"home": 1.0})
    source: str | None = None  # utm_source and utm_medium, paid only
    medium: str | None = None
    campaigns: tuple[_Campaign, ...] = ()


_GOOGLE: Final = "https://www.google.com/"
_BING: Final = "https://www.bing.com/"
_SEARCH_TERMS: Final = ("running shoes", "buy sneakers online", "trail running shoes")
_BRAND_TERMS: Final = ("shop example", "shopexample", "shop example discount code")
_SOCIAL_ADS: Final = ("carousel_v1", "video_15s", "static_a")

# Shares add up to 1; the paid channels bring 40 % of sessions. Email and affiliates
# convert best, paid social and display worst, so per-channel metrics differ.
_SOURCES: Final = (
    #        channel           share  bounce pages+ purchase sign_up
    _Source("organic_search", 0.270, 0.40, 0.62, 0.028, 0.035, (_GOOGLE,),
            landing={"product": 2, "category": 2, "blog": 1, "home": 1}),
    _Source("organic_search", 0.025, 0.40, 0.62, 0.028, 0.035, (_BING,),
            landing={"product": 1, "category": 1, "home": 1}),
    _Source("organic_search", 0.005, 0.40, 0.62, 0.028, 0.035, ("https://duckduckgo.com/",),
            landing={"product": 1, "category": 1}),
    _Source("direct",         0.180, 0.45, 0.60, 0.030, 0.030,
            landing={"home": 2, "product": 1}),
    _Source("organic_social", 0.060, 0.60, 0.50, 0.008, 0.020,
            ("https://l.facebook.com/", "https://l.facebook.com/", "https://t.co/",
             "https://l.instagram.com/", "https://www.linkedin.com/"),
            landing={"product": 1, "blog": 1}),
    _Source("referral",       0.050, 0.50, 0.60, 0.020, 0.025,
            ("https://blog.gearreviews.example/best-running-shoes-2026",
             "https://www.trailforum.example/threads/8812",
             "https://medium.com/@coach_anna/marathon-gear"),
            landing={"product": 1, "blog": 1}),
    _Source("paid_search",    0.145, 0.42, 0.62, 0.035, 0.030, (_GOOGLE,),
            click_ids=("gclid", "gclid", "gclid", "gbraid", None),
            source="google", medium="cpc", campaigns=(
                _Campaign("brand_search", 0.35, {"home": 1}, 0.35, 0.08,
                          _BRAND_TERMS, ("ad_a", "ad_b")),
                _Campaign("generic_search", 0.45, {"category": 1, "product": 1}, 1.10, 0.04,
                          _SEARCH_TERMS, ("ad_a", "ad_b")),
                _Campaign("shopping_pmax", 0.20, {"product": 1}, 0.70, 0.02))),
    _Source("paid_search",    0.025, 0.42, 0.62, 0.035, 0.030, (_BING,),
            click_ids=("msclkid", "msclkid", None), source="bing", medium="cpc", campaigns=(
                _Campaign("brand_search", 0.5, {"home": 1}, 0.30, 0.07, _BRAND_TERMS),
                _Campaign("generic_search", 0.5, {"category": 1, "product": 1}, 0.80, 0.03,
                          _SEARCH_TERMS))),
    _Source("paid_social",    0.060, 0.58, 0.50, 0.012, 0.025,
            ("https://l.facebook.com/", "https://m.facebook.com/"), click_ids=("fbclid",),
            source="facebook", medium="paid_social", campaigns=(
                _Campaign("prospecting_lookalike", 0.6, {"product": 1, "category": 1}, 0.55,
                          0.012, contents=_SOCIAL_ADS),
                _Campaign("retargeting_cart", 0.4, {"product": 1}, 0.45, 0.018,
                          contents=_SOCIAL_ADS))),
    _Source("paid_social",    0.030, 0.58, 0.50, 0.012, 0.025, ("https://l.instagram.com/",),
            source="instagram", medium="cpc", campaigns=(
                _Campaign("reels_new_arrivals", 1.0, {"product": 1}, 0.50, 0.010,
                          contents=("reel_a", "reel_b")),)),
    _Source("paid_social",    0.010, 0.55, 0.55, 0.010, 0.040, ("https://www.linkedin.com/",),
            source="linkedin", medium="cpc", campaigns=(
                _Campaign("corporate_gifting", 1.0, {"category": 1}, 2.40, 0.006),)),
    _Source("email",          0.060, 0.35, 0.65, 0.045, 0.010,
            source="newsletter", medium="email", campaigns=(
                _Campaign("weekly_digest", 0.7, {"product": 1, "category": 1}, 0.04, 0.03,
                          contents=("hero_button", "product_grid", "footer_link")),
                _Campaign("abandoned_cart", 0.3, {"product": 1}, 0.04, 0.08,
                          contents=("reminder_1", "reminder_2")))),
    _Source("display",        0.030, 0.70, 0.45, 0.006, 0.010,
            ("https://googleads.g.doubleclick.net/",),
            source="gdn", medium="display", campaigns=(
                _Campaign("remarketing_banners", 1.0, {"product": 2, "home": 1}, 0.30, 0.002,
                          contents=("300x250", "728x90", "320x50")),)),
    _Source("display",        0.020, 0.70, 0.45, 0.006, 0.010,
            source="criteo", medium="display", campaigns=(
                _Campaign("dynamic_retargeting", 1.0, {"product": 1}, 0.40, 0.004),)),
    _Source("affiliate",      0.030, 0.40, 0.60, 0.050, 0.015,
            ("https://www.dealfinder.example/", "https://coupons.example/shop-example"),
            source="awin", medium="affiliate", campaigns=(
                _Campaign("affiliate_program", 1.0, {"product": 2, "home": 1}, 0.30, 0.05,
                          contents=("pub_10234", "pub_20871", "pub_33190")),)),
)  # fmt: skip


def _expected_events(src: _Source) -> float:
    """Mean events per session from a source: 1 page if it bounces, else 2 plus a
    geometric number, plus its conversion events."""
    pages = src.bounce + (1 - src.bounce) * (2 + src.more_pages / (1 - src.more_pages))
    return pages + src.purchase + src.sign_up


# Sessions per day come from this, so events per day land on the target.
_MEAN_EVENTS_PER_SESSION: Final = sum(s.weight * _expected_events(s) for s in _SOURCES)

# Sites become URLs (https://<site>/...), so they must be host names; that also keeps
# every string the generator makes free of characters JSON would escape (see _Traffic).
_HOST: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?")


def second_currency(currency: str) -> str:
    """The currency some generated purchases are paid in besides `currency`."""
    return "EUR" if currency != "EUR" else "USD"


@dataclass(frozen=True)
class GeneratorConfig:
    days: int
    start: date
    seed: int = 42
    events_per_day: int = 5000
    sites: tuple[str, ...] = ("shop.example",)
    currency: str = "USD"
    # A share of purchases paid in `second_currency(currency)`, to exercise the rates; off
    # for traffic meant for a config without that rate (the demo's on embedded defaults).
    other_currency_purchases: bool = True

    def __post_init__(self) -> None:
        # ConfigError: the CLI reports it as one line naming the bad setting.
        if self.days < 1:
            raise ConfigError(f"days must be at least 1, got {self.days}")
        if self.events_per_day < 0:
            raise ConfigError(f"events_per_day must not be negative, got {self.events_per_day}")
        if not self.sites or not all(_HOST.fullmatch(site) for site in self.sites):
            raise ConfigError(f"sites must be host names, got {self.sites!r}")
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ConfigError(f"currency must be an ISO 4217 code, got {self.currency!r}")


def _unheard(count: int) -> None:
    pass


@dataclass(frozen=True)
class GeneratedFiles:
    events_path: Path
    costs_path: Path
    events: int  # lines in events.jsonl, the duplicate copies included
    cost_rows: int
    duplicates: int
    late: int


def generate_events(config: GeneratorConfig) -> Iterator[dict[str, Any]]:
    """Canonical events in arrival order: chronological but for the late events and the
    duplicates. A fresh dict each time; the same config gives the same stream."""
    return map(json.loads, _Traffic(config).lines())


def generate_costs(config: GeneratorConfig) -> list[dict[str, Any]]:
    """One row per day x site x paid campaign, sized to the traffic the campaign sends:
    clicks a little above sessions, since some clicks never load the tracker."""
    rng = random.Random(config.seed)
    targets = _daily_targets(rng, config)  # the same draws generate_events starts with
    rows: list[dict[str, Any]] = []
    for day_index, target in enumerate(targets):
        day = (config.start + timedelta(days=day_index)).isoformat()
        sessions = target / _MEAN_EVENTS_PER_SESSION
        for site, site_share in zip(config.sites, _site_shares(config.sites), strict=True):
            for src in _SOURCES:
                for camp in src.campaigns:
                    expected = sessions * site_share * src.weight * camp.share
                    clicks = round(expected * rng.uniform(1.05, 1.25))
                    impressions = round(clicks / (camp.ctr * rng.uniform(0.8, 1.2)))
                    cost = round(clicks * camp.cpc * rng.uniform(0.85, 1.15), 2)
                    rows.append(
                        {
                            "date": day,
                            "site_id": site,
                            "source": src.source,
                            "medium": src.medium,
                            "campaign": camp.name,
                            "ad_group": None,
                            "term": None,
                            "content": None,
                            "cost": cost,
                            "currency": config.currency,
                            "clicks": clicks,
                            "impressions": impressions,
                        }
                    )
    return rows


def expected_events(config: GeneratorConfig) -> int:
    """About how many events `config` makes: the days' targets (the events drawn per
    session, the duplicates and the rounding make the true count differ by a few %)."""
    return round(sum(_daily_targets(random.Random(config.seed), config)))


def write_dataset(
    config: GeneratorConfig, out_dir: Path, progress: Callable[[int], None] = _unheard
) -> GeneratedFiles:
    """out_dir/events.jsonl and out_dir/costs.csv, each written whole or not at all;
    `progress` hears of the events as they are written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    events_path = out_dir / "events.jsonl"
    costs_path = out_dir / "costs.csv"

    traffic = _Traffic(config)
    lines = 0
    with _atomic_open(events_path) as out:
        stream = traffic.lines()
        while chunk := list(itertools.islice(stream, 10_000)):  # fewer, larger writes
            out.write(("\n".join(chunk) + "\n").encode())  # binary: text mode is slower
            lines += len(chunk)
            progress(len(chunk))

    rows = generate_costs(config)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COST_COLUMNS)
    for row in rows:
        # Two decimals in the text too: "12.50", not "12.5".
        writer.writerow([f"{row['cost']:.2f}" if c == "cost" else row[c] for c in COST_COLUMNS])
    with _atomic_open(costs_path) as out:
        out.write(text.getvalue().encode())

    return GeneratedFiles(
        events_path=events_path,
        costs_path=costs_path,
        events=lines,
        cost_rows=len(rows),
        duplicates=traffic.duplicates,
        late=traffic.late,
    )


@contextmanager
def _atomic_open(path: Path) -> Iterator[BinaryIO]:
    """A temp file next to `path`, renamed over it only once completely written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _daily_targets(rng: random.Random, config: GeneratorConfig) -> list[float]:
    """Expected events per day: weekday shape times a uniform jitter."""
    targets = []
    for day_index in range(config.days):
        weekday = (config.start + timedelta(days=day_index)).weekday()
        jitter = rng.uniform(1 - _DAY_JITTER, 1 + _DAY_JITTER)
        targets.append(config.events_per_day * _DOW_WEIGHTS[weekday] * jitter)
    return targets


def _site_shares(sites: tuple[str, ...]) -> list[float]:
    """The first site is the main one: shares fall off as 1, 1/2, 1/3..."""
    raw = [1 / (i + 1) for i in range(len(sites))]
    return [r / sum(raw) for r in raw]


def _cum(weights: Iterable[float]) -> tuple[float, ...]:
    """Cumulative weights scaled to end at exactly 1.0: `bisect_right(cum, rng.random())`
    then picks an index in proportion to its weight, as rng.choices would, minus the
    Python call and the list it builds for one item."""
    cum = list(accumulate(weights))
    return (*(c / cum[-1] for c in cum[:-1]), 1.0)


def _page_table(kinds: Mapping[str, float], slots: int = 1000) -> tuple[str, ...]:
    """Paths to draw from uniformly: each kind of page fills its share of the slots, spread
    over that kind's pages. One draw per page view instead of two."""
    total = sum(kinds.values())
    table: list[str] = []
    for kind, weight in kinds.items():
        pages = _PAGES[kind]
        table.extend(pages[i % len(pages)] for i in range(max(1, round(slots * weight / total))))
    return tuple(table)


def _utm_tags(src: _Source, camp: _Campaign) -> tuple[tuple[str, str], ...]:
    """Each (term, content) combination of a campaign: its utm fields as JSON members
    (with a leading comma), and the landing page's query string that carries them."""
    tags = []
    for term, content in itertools.product(camp.terms, camp.contents):
        utm = {"utm_source": src.source, "utm_medium": src.medium, "utm_campaign": camp.name,
               "utm_term": term, "utm_content": content}  # fmt: skip
        present = {k: v for k, v in utm.items() if v is not None}
        members = "".join(f',"{k}":"{v}"' for k, v in present.items())
        query = "?" + "&".join(f"{k}={quote_plus(v)}" for k, v in present.items())
        tags.append((members, query))
    return tuple(tags)


@dataclass(frozen=True)
class _Entry:
    """A source, or one campaign of a paid source, ready to draw from."""

    source: _Source
    pages: tuple[str, ...]  # landing pages, from _page_table
    tags: tuple[tuple[str, str], ...]  # from _utm_tags; ("", "") if unpaid
    log_more: float  # ln(more_pages), for the geometric page count
    purchase_if_engaged: float  # purchases need 2+ pages: the rate among those sessions


def _entries() -> tuple[tuple[_Entry, ...], tuple[float, ...]]:
    """Every way into the site with its share of sessions: one draw picks source and
    campaign together."""
    entries, weights = [], []
    for src in _SOURCES:
        for camp in src.campaigns or (None,):
            entries.append(
                _Entry(
                    source=src,
                    pages=_page_table(camp.landing if camp else src.landing),
                    tags=_utm_tags(src, camp) if camp else (("", ""),),
                    log_more=math.log(src.more_pages),
                    purchase_if_engaged=src.purchase / (1 - src.bounce),
                )
            )
            weights.append(src.weight * (camp.share if camp else 1.0))
    return tuple(entries), _cum(weights)


class _Visitor:
    __slots__ = ("busy_until", "ga4", "json", "site", "user_id")

    def __init__(self, site: str, ga4: bool, user_id: str | None, json: str) -> None:
        self.site = site
        self.ga4 = ga4
        self.user_id = user_id
        self.json = json  # site, visitor id, device and country, as JSON members
        self.busy_until = 0  # epoch us: in a session, or its timeout not yet over


class _Traffic:
    """One run of the generator: the events, in arrival order, as JSON lines.

    Lines are built straight from f-strings, the fastest way to the file format, and
    generate_events parses them, so there is one definition of each event. Nothing in
    them needs JSON escaping: every value is hex, digits, a name from the tables above, a
    validated host name or a URL-quoted query (the tests parse every line)."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.targets = _daily_targets(self.rng, config)
        self.duplicates = 0
        self.late = 0
        self._seq = itertools.count()  # tie-breaker: equal times keep insertion order
        self._other_currency = second_currency(config.currency)
        self._site_cum = _cum(_site_shares(config.sites))
        self._pools: dict[str, list[_Visitor]] = {site: [] for site in config.sites}
        self._returns: list[tuple[int, int, _Visitor]] = []  # (earliest start, seq, visitor)
        # Lines by arrival time: the event time, later for late events and duplicates.
        self._pending: list[tuple[int, int, str]] = []
        self._minute_heads: dict[int, str] = {}  # epoch minute -> '"2026-11-01T10:15:'
        # Choice tables built once: a pick is then one draw and a bisect.
        self._entries, self._entry_cum = _entries()
        # Devices and countries as ready-made JSON members.
        devices = {
            f'"device_category":"{device}","browser":"{browser}","os":"{os_name}"': share * w
            for device, share in _DEVICE_SHARES.items()
            for browser, os_name, w in _BROWSER_OS[device]
        }
        self._devices, self._device_cum = tuple(devices), _cum(devices.values())
        self._countries = tuple(f'"country":"{c}"' for c in _COUNTRY_SHARES)
        self._country_cum = _cum(_COUNTRY_SHARES.values())
        self._ts_style_cum = _cum(_TS_STYLE_SHARES)
        self._navigation = _page_table(_NAVIGATION)
        self._txn_prefix = f"T{self.rng.getrandbits(32):08X}"
        self._txn_count = itertools.count(1)

    def lines(self) -> Iterator[str]:
        """Day by day, sessions in order of their start, events in order of arrival."""
        rng = self.rng
        pending = self._pending
        hour_cum = tuple(accumulate(_HOUR_WEIGHTS))
        first_day = (self.config.start - date(1970, 1, 1)).days
        for day_index, target in enumerate(self.targets):
            day_us = (first_day + day_index) * _DAY_US
            n_sessions = round(target / _MEAN_EVENTS_PER_SESSION)
            starts = sorted(
                day_us + int((h + rng.random()) * _HOUR_US)
                for h in rng.choices(range(24), cum_weights=hour_cum, k=n_sessions)
            )
            # Same-day returns only: a cookie-free id has rotated by tomorrow, and
            # GA4-style visitors come back on later days through the pool.
            self._returns.clear()
            self._minute_heads.clear()  # bounded memory; yesterday's are rarely needed
            for start_us in starts:
                # Whatever arrives before this session starts can go: later sessions
                # only add events that arrive later still.
                while pending and pending[0][0] <= start_us:
                    yield heappop(pending)[2]
                self._session(start_us, day_us + _DAY_US)
        while pending:
            yield heappop(pending)[2]

    def _visitor(self, start_us: int) -> _Visitor:
        """Who starts a session now: a same-day return that is due, a GA4-style visitor
        seen before, or a new visitor."""
        random_ = self.rng.random
        returns = self._returns
        if returns and returns[0][0] <= start_us:
            visitor = heappop(returns)[2]
            if visitor.busy_until <= start_us:
                return visitor
        sites = self.config.sites
        site = sites[0] if len(sites) == 1 else sites[bisect_right(self._site_cum, random_())]
        ga4 = random_() < _P_GA4
        pool = self._pools[site]
        if ga4 and pool and random_() < _P_POOL_RETURN:
            visitor = pool[int(random_() * len(pool))]
            if visitor.busy_until <= start_us:
                return visitor
        device = self._devices[bisect_right(self._device_cum, random_())]
        country = self._countries[bisect_right(self._country_cum, random_())]
        getrandbits = self.rng.getrandbits
        user_id = f"{getrandbits(256):064x}" if ga4 and random_() < _P_LOGGED_IN else None
        scope = "client" if ga4 else "daily"
        json = (
            f'"site_id":"{site}","visitor_id":"{getrandbits(128):032x}",'
            f'"visitor_scope":"{scope}",{device},{country}'
        )
        visitor = _Visitor(site, ga4, user_id, json)
        if ga4:
            if len(pool) < _POOL_SIZE:
                pool.append(visitor)
            else:  # forget someone: they may still come back, under a new id
                pool[int(random_() * _POOL_SIZE)] = visitor
        return visitor

    @staticmethod
    def _shared(visitor: _Visitor, start_us: int) -> str:
        """The JSON members all events of the session carry."""
        if not visitor.ga4:
            return visitor.json
        # ga_session_id: the session start in epoch seconds.
        shared = f'{visitor.json},"session_id":"{start_us // _US}"'
        if visitor.user_id is not None:
            shared += f',"user_id":"{visitor.user_id}"'
        return shared

    def _session(self, start_us: int, day_end_us: int) -> None:
        """Plan one session (pages, timing, conversions), then queue its events."""
        rng = self.rng
        random_, log = rng.random, math.log
        visitor = self._visitor(start_us)
        entry = self._entries[bisect_right(self._entry_cum, random_())]
        src = entry.source

        if random_() < src.bounce:
            pages = 1
        else:  # geometric: floor(ln U / ln q) pages beyond the second
            pages = 2 + min(int(log(1.0 - random_()) / entry.log_more), _MAX_EXTRA_PAGES)
        purchase = pages > 1 and random_() < entry.purchase_if_engaged
        sign_up_at = int(random_() * pages) if random_() < src.sign_up else -1
        utm, query = entry.tags[int(random_() * len(entry.tags))]
        referrer = src.referrers[int(random_() * len(src.referrers))]
        click_id = src.click_ids[int(random_() * len(src.click_ids))]

        nav = self._navigation
        paths = [entry.pages[int(random_() * len(entry.pages))]]
        paths += [nav[int(random_() * len(nav))] for _ in range(pages - 1)]
        if purchase:  # the visit ends in the cart and the checkout
            paths[-1] = "/checkout"
            if pages >= 3:
                paths[-2] = "/cart"

        # (timestamp, event_name, the event's own fields as JSON members), in time order.
        events: list[tuple[int, str, str]] = []
        base = f"https://{visitor.site}"
        min_gap, mean_gap, max_gap = _PAGE_GAP_S
        conv_low, conv_high = _CONVERSION_DELAY_US
        last = pages - 1
        ts = start_us
        for i, path in enumerate(paths):
            gap_s = min(min_gap - mean_gap * log(1.0 - random_()), max_gap)  # exponential
            if i == last:
                engaged_s = -_EXIT_PAGE_ENGAGEMENT_S * log(1.0 - random_())
            else:  # part of the gap is spent with the tab in the background
                engaged_s = gap_s * (0.5 + 0.45 * random_())
            url = base + path
            if i == 0:  # the landing page: external referrer, campaign fields, click id
                ref = "" if referrer is None else f',"page_referrer":"{referrer}"'
                click = "" if click_id is None else f',"click_id_type":"{click_id}"'
                own = f'"page_url":"{url}{query}"{ref}{utm}{click}'
            else:
                own = f'"page_url":"{url}","page_referrer":"{base}{paths[i - 1]}"'
            events.append((ts, "page_view", f'{own},"engagement_time_ms":{int(engaged_s * 1000)}'))
            # Conversions fire a moment after their page view, before the next one.
            if i == sign_up_at:
                conv_ts = ts + conv_low + int(random_() * (conv_high - conv_low))
                events.append((conv_ts, "sign_up", f'"page_url":"{url}"'))
            if purchase and i == last:
                conv_ts = ts + conv_low + int(random_() * (conv_high - conv_low))
                events.append((conv_ts, "purchase", self._purchase(url)))
            if i != last:
                ts += int(gap_s * _US)

        visitor.busy_until = ts + _SESSION_BUSY_US
        if random_() < _P_SAME_DAY_RETURN:
            low, high = _RETURN_GAP_US
            comeback = ts + low + int(random_() * (high - low))
            if comeback < day_end_us:
                heappush(self._returns, (comeback, next(self._seq), visitor))
        self._queue(events, visitor, start_us)

    def _purchase(self, url: str) -> str:
        median, sigma, low, high = _PURCHASE_VALUE
        value = min(max(self.rng.lognormvariate(math.log(median), sigma), low), high)
        other = self.rng.random() < _P_OTHER_CURRENCY and self.config.other_currency_purchases
        currency = self._other_currency if other else self.config.currency
        transaction_id = f"{self._txn_prefix}-{next(self._txn_count):07d}"
        return (
            f'"page_url":"{url}","value":{round(value, 2)!r},"currency":"{currency}",'
            f'"transaction_id":"{transaction_id}"'
        )

    def _queue(self, events: list[tuple[int, str, str]], visitor: _Visitor, start_us: int) -> None:
        """Make a session's events into lines and queue them by arrival time: on time,
        late, or on time and once more a little later (a duplicate)."""
        rng, pending, seq = self.rng, self._pending, self._seq
        random_, getrandbits = rng.random, rng.getrandbits
        shared = self._shared(visitor, start_us)
        style = _TS_STYLES[bisect_right(self._ts_style_cum, random_())]
        suffix, offset_us = style or ("", 0)
        late_low, late_high = _LATE_DELAY_US
        dup_low, dup_high = _DUPLICATE_DELAY_US
        heads = self._minute_heads
        for ts, name, own in events:
            # RFC 3339 by hand, with date, hour and minute cached: a datetime per event
            # would cost more than all the rest of it.
            if style is None:
                event_ts = str(ts)  # integer epoch microseconds
            else:
                minute, rem = divmod(ts + offset_us, _MINUTE_US)
                head = heads.get(minute)
                if head is None:
                    local = datetime(1970, 1, 1) + timedelta(minutes=minute)
                    head = heads[minute] = local.strftime('"%Y-%m-%dT%H:%M:')
                # "SS.ffffff": exact, as the float is within 1e-14 of the 6-decimal value.
                event_ts = f'{head}{rem / _US:09.6f}{suffix}"'
            line = (
                f'{{"event_id":"{getrandbits(128):032x}","event_name":"{name}",'
                f'"event_ts":{event_ts},{shared},{own}}}'
            )
            arrival = ts
            draw = random_()
            if draw < _P_LATE:
                self.late += 1
                arrival += late_low + int(random_() * (late_high - late_low))
            elif draw < _P_LATE + _P_DUPLICATE:
                self.duplicates += 1
                again = ts + dup_low + int(random_() * (dup_high - dup_low))
                heappush(pending, (again, next(seq), line))
            heappush(pending, (arrival, next(seq), line))

            if name == "sign_up" and visitor.ga4 and visitor.user_id is None:
                # Known by a user id from now on.
                visitor.user_id = f"{getrandbits(256):064x}"
                shared = self._shared(visitor, start_us)


__all__ = [
    "COST_COLUMNS",
    "GeneratedFiles",
    "GeneratorConfig",
    "expected_events",
    "generate_costs",
    "generate_events",
    "write_dataset",
]
