"""Hit + request -> canonical event, as a straight pipeline of small named steps.

Modelled on Plausible's ingestion/event.ex: every step either enriches the event or stops
it with a named reason. `Rejected` is bad input (the client gets a 4xx with the reason);
`Dropped` is good input we deliberately do not keep (bots, opted-out browsers).

Privacy happens here, before anything leaves the collector: the IP and user agent are
only inputs to the visitor hash and device detection; client and user ids are replaced by
keyed hashes; URLs are scrubbed. The canonical event that comes out holds none of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.collector.hits import Hit
from pipeline.collector.urls import scrub_url
from pipeline.collector.useragent import describe_user_agent
from pipeline.config import Settings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import MICROS, collector_window
from pipeline.events.validation import Event, validate_event
from pipeline.privacy.country import CountryResolver
from pipeline.privacy.ids import RecentVisitors, SiteKeys
from pipeline.privacy.salts import SaltStore

_GA4_DEVICE_CATEGORIES = frozenset({"desktop", "mobile", "tablet"})


class Dropped(Exception):
    """Good input deliberately not kept (like Plausible's {:error, :dropped})."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RequestContext:
    """What the collector knows about the HTTP request; never forwarded as such."""

    ip: str
    user_agent: str
    headers: Mapping[str, str]  # lower-case names
    received_micros: int


Step = Callable[[Hit, RequestContext, Event], None]


class Ingestor:
    def __init__(self, settings: Settings) -> None:
        timeout = timedelta(minutes=settings.sessionization.timeout_minutes)
        self.sites = frozenset(settings.sites)
        self.salts = SaltStore(settings.salt_dir, settings.timezone, keep_previous=timeout)
        self.site_keys = SiteKeys(settings.site_key_file)
        self.recent_visitors = RecentVisitors(int(timeout.total_seconds() * MICROS))
        self.countries = CountryResolver(
            settings.privacy.country_header, settings.privacy.geoip_database
        )
        self.respect_opt_out = settings.privacy.respect_opt_out
        self.window = collector_window(settings.validation)
        # Browsers send PlainSignal-style hits; GA4 MP mostly comes from servers, whose
        # user agent and IP describe the server, not the visitor.
        self._steps: dict[str, tuple[Step, ...]] = {
            "plainsignal": (
                self.put_site, self.drop_bots, self.drop_opted_out, self.put_user_agent_info,
                self.put_page, self.put_country_from_request, self.put_cookie_free_visitor_id,
                self.put_event_fields,
            ),
            "ga4": (
                self.put_site, self.drop_opted_out, self.put_ga4_device, self.put_page,
                self.put_ga4_country, self.put_stable_visitor_id, self.put_user_id,
                self.put_event_fields,
            ),
        }  # fmt: skip

    def to_canonical(self, hit: Hit, request: RequestContext) -> Event:
        event: Event = {}
        for step in self._steps[hit.dialect]:
            step(hit, request, event)
        return validate_event(event, now_micros=request.received_micros, window=self.window)

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
        page = scrub_url(hit.page_url)
        if hit.page_url and page.url is None:
            raise Rejected(Reason.BAD_URL, "page url must be an absolute http(s) URL")
        event["page_url"] = page.url
        event["page_referrer"] = scrub_url(hit.page_referrer).url
        # Explicit campaign fields win over the landing page's utm_* parameters.
        event.update(page.utm)
        event.update(hit.campaign)
        event["click_id_type"] = page.click_id_type

    def put_country_from_request(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["country"] = self.countries.country(request.headers, request.ip)

    def put_ga4_country(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["country"] = (hit.country or "").upper() or None

    def put_cookie_free_visitor_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        now = datetime.fromtimestamp(request.received_micros / MICROS, UTC)
        event["visitor_id"] = self.recent_visitors.cookie_free_id(
            self.salts.salts(now),
            event["site_id"],
            request.ip,
            request.user_agent,
            request.received_micros,
        )

    def put_stable_visitor_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        assert hit.client_id is not None  # the GA4 dialect requires it
        event["visitor_id"] = self.site_keys.stable_id(event["site_id"], "client", hit.client_id)

    def put_user_id(self, hit: Hit, request: RequestContext, event: Event) -> None:
        if hit.user_id is not None:
            event["user_id"] = self.site_keys.stable_id(event["site_id"], "user", hit.user_id)

    def put_event_fields(self, hit: Hit, request: RequestContext, event: Event) -> None:
        event["event_id"] = hit.event_id or uuid.uuid4().hex
        event["event_name"] = hit.event_name
        event["event_ts"] = hit.event_ts if hit.event_ts is not None else request.received_micros
        event["session_id"] = hit.session_id
        event["value"] = hit.value
        event["currency"] = hit.currency
        event["transaction_id"] = hit.transaction_id
        event["engagement_time_ms"] = hit.engagement_time_ms
