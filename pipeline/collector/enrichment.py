"""Hit + request -> canonical event, as a straight pipeline of small named steps.

Modelled on Plausible's ingestion/event.ex: every step either enriches the event or stops
it with a named reason. `Rejected` is bad input (the client gets a 4xx with the reason);
`Dropped` is good input we deliberately do not keep (bots, opted-out browsers).

Privacy happens here, before anything leaves the collector: the IP and user agent are
only inputs to the visitor hash and device detection; client, user and session ids are
replaced by keyed hashes; URLs are scrubbed. The canonical event that comes out holds none of them.

Event ids: an explicit one is kept. GA4 MP has none, so a client's retry would count every
event twice; where the client dates the event (`timestamp_micros`, the event's or the
request's), the id is derived from the hit itself (`ga4_event_id`), the same on every retry,
and the consumer's de-duplication drops the repeat. Anything else gets a random id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from pipeline.collector.hits import Hit
from pipeline.collector.useragent import describe_user_agent
from pipeline.config import Settings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.site_rules import ANONYMOUS, AUTHENTICATED, SiteRules
from pipeline.events.timestamps import MICROS, collector_window
from pipeline.events.validation import Event, validate_event
from pipeline.privacy.country import CountryResolver
from pipeline.privacy.hashing import keyed_hash
from pipeline.privacy.ids import RecentVisitors, SiteKeys
from pipeline.privacy.salts import SaltStore
from pipeline.privacy.urls import scrub_page_fields, scrub_url

_GA4_DEVICE_CATEGORIES = frozenset({"desktop", "mobile", "tablet"})
# Separates derived event ids from every other hash made with a site's key; a new version
# of the rule gets a new label.
GA4_EVENT_ID_LABEL = "sessionflow/ga4-event-id/v1"
# Client and user ids up to this long have their keyed hashes memoised (GA4's client ids
# are about 20 characters).
CACHED_ID_LENGTH = 128


class Dropped(Exception):
    """Good input deliberately not kept (like Plausible's {:error, :dropped})."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RequestContext:
    """What the collector knows about the HTTP request; never forwarded as such."""

    ip: str  # the client's, as pipeline.collector.client_address finds it
    user_agent: str
    headers: Mapping[str, str]  # lower-case names
    received_micros: int
    # Came through a trusted proxy: the headers it sets (the country) count.
    via_trusted_proxy: bool = False
    # The route checked a secret the sender holds (the site's api_secret on /mp/collect):
    # its events are authenticated. Set by the route, never from what the client sends.
    authenticated: bool = False


Step = Callable[[Hit, RequestContext, Event], None]


class Ingestor:
    def __init__(self, settings: Settings) -> None:
        timeout = timedelta(minutes=settings.sessionization.timeout_minutes)
        self.sites = frozenset(settings.sites)
        self.salts = SaltStore.from_settings(settings)
        self.salts.check(datetime.now(UTC))  # an unprotected or empty salt: refused at start
        self.site_keys = SiteKeys(settings.site_key_file)
        self.recent_visitors = RecentVisitors(int(timeout.total_seconds() * MICROS))
        self.countries = CountryResolver(
            settings.privacy.country_header, settings.privacy.geoip_database
        )
        self.respect_opt_out = settings.privacy.respect_opt_out
        self.window = collector_window(settings.validation)
        self.site_for_measurement_id = settings.site_for_measurement_id
        self.site_rules = SiteRules.from_settings(settings)
        # A GA4 batch repeats its client id (and user id) in every event, and a visitor
        # comes back: the keyed hashes of ids up to 128 characters are memoised, 16,384 of
        # them, each entry at most about 1 kB: under 17 MB.
        self._cached_stable_id = lru_cache(maxsize=16_384)(self.site_keys.stable_id)
        # The day's salts, looked up once per second rather than per event.
        self._salts_second = -1
        self._salts_of_second: tuple[bytes, bytes | None] = (b"", None)
        # Browsers send PlainSignal-style hits; GA4 MP mostly comes from servers, whose
        # user agent and IP describe the server, not the visitor.
        self._steps: dict[str, tuple[Step, ...]] = {
            "plainsignal": (
                self.put_site, self.put_trust, self.drop_bots, self.drop_opted_out,
                self.put_user_agent_info, self.put_page, self.put_country_from_request,
                self.put_cookie_free_visitor_id, self.put_event_id, self.put_event_fields,
            ),
            "ga4": (
                self.put_site, self.put_trust, self.drop_opted_out, self.put_ga4_device,
                self.put_page, self.put_ga4_country, self.put_stable_visitor_id,
                self.put_user_id, self.put_session_id, self.put_ga4_event_id,
                self.put_event_fields,
            ),
            # gtag.js (/g/collect) runs in the visitor's browser: its user agent and address
            # describe the visitor, as for PlainSignal; its ids are GA4's, hashed alike.
            "gtag": (
                self.put_measurement_site, self.put_trust, self.drop_bots, self.drop_opted_out,
                self.put_user_agent_info, self.put_page, self.put_country_from_request,
                self.put_stable_visitor_id, self.put_user_id, self.put_session_id,
                self.put_event_id, self.put_event_fields,
            ),
        }  # fmt: skip

    def to_canonical(self, hit: Hit, request: RequestContext) -> Event:
        event: Event = {}
        for step in self._steps[hit.dialect]:
            step(hit, request, event)
        return validate_event(
            event, now_micros=request.received_micros, window=self.window, rules=self.site_rules
        )

    # -- steps ----------------------------------------------------------------------------

    def put_site(self, hit: Hit, request: RequestContext, event: Event) -> None:
        site = hit.site_id
        if site is None:
            # PlainSignal style: the site defaults to the page's host.
            host = scrub_url(hit.page_url).host
            if host is None:
                raise Rejected(Reason.BAD_URL, "url must be an absolute http(s) URL")
            site = host.removeprefix("www.")
        if site not in self.sites:
            raise Rejected(Reason.UNKNOWN_SITE, f"site {site!r} is not configured in `sites`")
        event["site_id"] = site

    def put_measurement_site(self, hit: Hit, request: RequestContext, event: Event) -> None:
        # gtag.js names the site by its GA4 measurement id (`tid`): [ga4."<site>"].
        event["site_id"] = self.measurement_site(hit.site_id or "")

    def measurement_site(self, measurement_id: str) -> str:
        """The site a gtag.js `tid` names; Rejected when it names none."""
        site = self.site_for_measurement_id(measurement_id)
        if site is None:
            raise Rejected(
                Reason.UNKNOWN_SITE,
                f"measurement id {measurement_id!r} is not a configured [ga4] measurement_id",
            )
        return site

    def put_trust(self, hit: Hit, request: RequestContext, event: Event) -> None:
        # How the event arrived, never what the client says (a Hit holds no such field):
        # only a route that checked the sender's secret says so. Browser routes, and
        # /mp/collect for a site without an api_secret, anyone can send.
        event["trust"] = AUTHENTICATED if request.authenticated else ANONYMOUS

    def drop_bots(self, hit: Hit, request: RequestContext, event: Event) -> None:
        if describe_user_agent(request.user_agent).is_bot:
            raise Dropped("bot")

    def drop_opted_out(self, hit: Hit, request: RequestContext, event: Event) -> None:
        headers = request.headers
        if self.respect_opt_out and (headers.get("sec-gpc") == "1" or headers.get("dnt") == "1"):
            raise Dropped("opted_out")

    def put_user_agent_info(self, hit: Hit, request: RequestContext, event: Event) -> None:
        client = describe_user_agent(request.user_agent)
        event["device_category"] = client.device_category
        event["browser"] = client.browser
        event["os"] = client.os

    def put_ga4_device(self, hit: Hit, request: RequestContext, event: Event) -> None:
        category = hit.device.get("category", "").lower()
        event["device_category"] = category if category in _GA4_DEVICE_CATEGORIES else None
        event["browser"] = hit.device.get("browser")
        event["os"] = hit.device.get("operating_system")

    def put_page(self, hit: Hit, request: RequestContext, event: Event) -> None:
        # The rule the consumer and `import` apply too: URLs scrubbed, explicit campaign
        # fields win over the landing page's utm_* parameters, click id type from the URL.
        event.update(hit.campaign, page_url=hit.page_url, page_referrer=hit.page_referrer)
        scrub_page_fields(event)

    def put_country_from_request(self, hit: Hit, request: RequestContext, event: Event) -> None:
        # The country header is a proxy's word: from anyone else, it is ignored.
        headers = request.headers if request.via_trusted_proxy else {}
        event["country"] = self.countries.country(headers, request.ip)

    def put_ga4_country(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["country"] = (hit.country or "").upper() or None

    def put_cookie_free_visitor_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["visitor_id"] = self.recent_visitors.cookie_free_id(
            self._salts_at(request.received_micros),
            event["site_id"],
            request.ip,
            request.user_agent,
            request.received_micros,
        )
        event["visitor_scope"] = "daily"

    def _stable_id(self, site_id: str, kind: str, value: str) -> str:
        if len(value) > CACHED_ID_LENGTH:
            return self.site_keys.stable_id(site_id, kind, value)
        return self._cached_stable_id(site_id, kind, value)

    def put_stable_visitor_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        assert hit.client_id is not None  # the GA4 dialect requires it
        event["visitor_id"] = self._stable_id(event["site_id"], "client", hit.client_id)
        event["visitor_scope"] = "client"

    def put_user_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        if hit.user_id is not None:
            event["user_id"] = self._stable_id(event["site_id"], "user", hit.user_id)

    def put_session_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        # GA4's session id is the session's start in epoch seconds: with the client id it
        # would date and link a visit. Hashed with the site's key, the same client session
        # still gives the same id, so sessions group exactly as they did on the raw value.
        if hit.session_id is not None:
            event["session_id"] = self._stable_id(event["site_id"], "session", hit.session_id)

    def put_event_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["event_id"] = hit.event_id or random_event_id()

    def put_ga4_event_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        # Without timestamp_micros a retry is a new hit received later: nothing in it tells
        # it from a second real event, so it keeps a random id (and counts twice).
        if hit.event_id:
            event["event_id"] = hit.event_id
        elif hit.event_ts is not None:
            site = event["site_id"]
            event["event_id"] = ga4_event_id(self.site_keys.key_for(site), site, hit)
        else:
            event["event_id"] = random_event_id()

    def destroy_expired_salts(self, now: datetime) -> None:
        """Expired salts gone from disk, the store's memory and this second's copy."""
        self.salts.destroy_expired_at(now)
        self._salts_second, self._salts_of_second = -1, (b"", None)

    def _salts_at(self, micros: int) -> tuple[bytes, bytes | None]:
        # Salts change at midnight (and yesterday's is let go a timeout later): a whole
        # second's precision is plenty, and saves a datetime and a zone lookup per event.
        second = micros // MICROS
        if second != self._salts_second:
            now = datetime.fromtimestamp(second, UTC)
            self._salts_of_second = self.salts.salts(now)
            self._salts_second = second
        return self._salts_of_second

    def put_event_fields(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["event_name"] = hit.event_name
        event["event_ts"] = hit.event_ts if hit.event_ts is not None else request.received_micros
        event["value"] = hit.value
        event["currency"] = hit.currency
        event["transaction_id"] = hit.transaction_id
        event["engagement_time_ms"] = hit.engagement_time_ms


# -- event ids ------------------------------------------------------------------------------


def random_event_id() -> str:
    """A random UUID4 in hex, as uuid.uuid4().hex spells it, without building a UUID
    object (the collector makes one per browser event)."""
    digits = os.urandom(16).hex()
    # The version nibble is 4; the variant's top bits are 10 (8, 9, a or b).
    return f"{digits[:12]}4{digits[13:16]}{'89ab'[int(digits[16], 16) & 3]}{digits[17:]}"


def ga4_event_id(site_key: bytes, site_id: str, hit: Hit) -> str:
    """The id a dated GA4 hit gets on every retry: a keyed hash of the hit's own fields.

    The position in the request keeps two identical events of one batch two events. The
    key is the site's secret key, so the id cannot be used to confirm a guessed client id,
    user id or scrubbed URL; the raw values never leave the collector.
    """
    return keyed_hash(site_key, GA4_EVENT_ID_LABEL, *ga4_hit_identity(site_id, hit))


def ga4_hit_identity(site_id: str, hit: Hit) -> tuple[str, ...]:
    """What a retry repeats: who, when, what, where in the request, with which params."""
    assert hit.client_id is not None and hit.event_ts is not None  # dated GA4 hits only
    return (
        site_id,
        hit.client_id,
        hit.user_id or "",  # an empty user_id is read as none, so "" stands for none
        str(hit.event_ts),
        hit.event_name,
        str(hit.position),
        canonical_params(hit.params),
    )


def canonical_params(params: dict[str, Any]) -> str:
    """One spelling of the params: sorted keys, no spaces, ASCII only."""
    try:
        return json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except RecursionError:
        # Nesting just within what decode_json read may be too deep to write back here.
        raise Rejected(Reason.BAD_JSON, "params nest too deeply") from None
