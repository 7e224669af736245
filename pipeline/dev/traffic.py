"""The demo's traffic, sent the way real clients send it: generated canonical events
(pipeline.dev.generator), each turned into what its kind of client would send.

- GA4-style visitors (a stable client id): GA4 Measurement Protocol requests to a running
  collector's `/mp/collect`, as a shop's server sends them: one client and one session per
  request, at most 25 events, each dated by its `timestamp_micros`. The collector takes
  dates up to 72 h back, so past days and today go the same way.
- Cookie-free visitors of past days: the producer SDK (pipeline.kafka.producer), canonical
  events with their own ids and timestamps, as a back end that already holds them
  produces them. Browser protocols carry no timestamp: they cannot send yesterday.
- Cookie-free visitors of today: the PlainSignal body the tracker (static/t.js) posts to
  `/api/event`, one event a request, from the visitor's user agent, address and country
  (`X-Forwarded-For` and `CF-IPCountry`, as behind a proxy): the collector dates each on
  receipt and derives the day's visitor id, as for a browser.

Repeats happen as in life: the generator's duplicate events become retried requests (the
same GA4 body again, hence the same derived event ids) and SDK re-sends (the same
event_id); the pipeline's de-duplication drops both. A browser beacon is not retried, so a
cookie-free duplicate of today is not sent twice. Nothing here decides what counts: the
collector, the consumer and the warehouse do, and the tally only records what was taken.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from collections import Counter, OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from pipeline.collector.ga4 import GA4_MAX_EVENTS
from pipeline.config import Settings
from pipeline.errors import SessionflowError
from pipeline.events.site_rules import SiteRules
from pipeline.events.timestamps import MICROS, history_window, parse_event_ts
from pipeline.kafka.producer import EventProducer

# A request of a GA4 sender holds the events of its client's last minutes: a batch is
# sent once its first event is this old (in the traffic's own time), so events reach
# Kafka well within the consumer's allowed lateness.
_BATCH_WINDOW_US: Final = 5 * 60 * MICROS
# Back-dating a little less than the collector allows keeps clear of its edge.
_BACKDATE_MARGIN: Final = timedelta(minutes=5)
# Sent GA4 requests remembered for a late repeat of one of their events (a retry).
_REMEMBERED_EVENTS: Final = 50_000
_RETRIES: Final = 5
GA4_SENDER_USER_AGENT: Final = "sessionflow-demo/1 (GA4 Measurement Protocol)"

# What a browser of the generator's (device, browser, os) sends; the collector parses
# them back (uap-core names some differently, e.g. "Mobile Safari", "Mac OS X").
USER_AGENTS: Final = {
    ("desktop", "Chrome", "Windows"):
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ("desktop", "Edge", "Windows"):
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    ("desktop", "Firefox", "Windows"):
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ("desktop", "Opera", "Windows"):
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 OPR/116.0.0.0",
    ("desktop", "Chrome", "macOS"):
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Safari/537.36",
    ("desktop", "Safari", "macOS"):
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.2 Safari/605.1.15",
    ("desktop", "Firefox", "macOS"):
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    ("desktop", "Chrome", "Linux"):
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ("desktop", "Firefox", "Linux"):
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    ("desktop", "Chrome", "Chrome OS"):
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ("mobile", "Safari", "iOS"):
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
    ("mobile", "Chrome", "iOS"):
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
    ("mobile", "Chrome", "Android"):
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
    ("mobile", "Samsung Internet", "Android"):
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36",
    ("mobile", "Firefox", "Android"):
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    ("tablet", "Safari", "iOS"):
        "Mozilla/5.0 (iPad; CPU OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/18.2 Mobile/15E148 Safari/604.1",
    ("tablet", "Chrome", "Android"):
        "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    ("tablet", "Samsung Internet", "Android"):
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-X710) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Safari/537.36",
}  # fmt: skip
_FALLBACK_USER_AGENT: Final = USER_AGENTS[("desktop", "Chrome", "Windows")]

# The collector settings the demo's collector runs with: it stands behind a proxy that
# passes the visitor's address and country, as a CDN does.
CLIENT_IP_HEADER: Final = "X-Forwarded-For"
COUNTRY_HEADER: Final = "CF-IPCountry"


@dataclass
class DayTally:
    """One day's events as taken: by the SDK (Kafka), /mp/collect and /api/event."""

    sdk: int = 0
    ga4: int = 0
    browser: int = 0
    page_views: int = 0

    @property
    def events(self) -> int:
        return self.sdk + self.ga4 + self.browser


@dataclass
class Tally:
    """What was sent and taken. Repeats (retried requests, SDK re-sends) are not in the
    days' counts: de-duplication drops them."""

    days: dict[date, DayTally] = field(default_factory=dict)
    requests: int = 0  # HTTP requests, retries included
    repeats: int = 0  # events sent again, for de-duplication to drop
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # reason -> rejected events
    dropped: int = 0  # taken by the collector but deliberately not kept (bots, opt-out)
    not_yet: int = 0  # today's events later than now: not happened yet
    too_old: int = 0  # older than the collector's back-dating window
    before: int = 0  # dated before the first day (in the property time zone)
    produced: int = 0  # records the SDK put in Kafka, repeats included
    today_generated: int = 0  # today's events, the whole day's
    today_happened: int = 0  # of those, the ones up to now

    def day(self, day: date) -> DayTally:
        return self.days.setdefault(day, DayTally())

    @property
    def events(self) -> int:
        return sum(day.events for day in self.days.values())

    @property
    def page_views(self) -> int:
        return sum(day.page_views for day in self.days.values())

    @property
    def today_share(self) -> float:
        """The share of today's generated traffic that has happened by now."""
        return self.today_happened / self.today_generated if self.today_generated else 0.0


class _Http:
    """One keep-alive connection to the collector; 503 (buffer full) is waited out."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in range(_RETRIES):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self._connection.request("POST", path, body, headers)
                response = self._connection.getresponse()
                answer = response.read()
            except (OSError, http.client.HTTPException):
                # A keep-alive connection the server closed while idle: nothing was read.
                self.close()
                if attempt == _RETRIES - 1:
                    raise
                continue
            if response.status == 503:
                time.sleep(float(response.getheader("Retry-After") or 1))
                continue
            return response.status, answer
        raise SessionflowError(f"the collector answered 503 to {_RETRIES} tries of {path}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass
class _Batch:
    """A GA4 sender's request being filled: one client, one session, one user id."""

    site: str
    client_id: str
    session_id: str | None
    user_id: str | None
    first_ts: int
    device: dict[str, str]
    country: str | None
    events: list[dict[str, Any]] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    retry: bool = False  # one of its events is sent twice: the whole request is


@dataclass
class _Sent:
    path: str
    body: bytes
    retried: bool = False


class TrafficSender:
    """Sends generated events (in arrival order) to the collector at host:port and to
    Kafka; `close()` sends what is still held and waits for the SDK's acknowledgements."""

    def __init__(
        self, settings: Settings, host: str, port: int, now: datetime, first_day: date
    ) -> None:
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.now_us = int(now.timestamp() * MICROS)
        self.today = now.astimezone(self.zone).date()
        self.first_day = first_day  # in the property time zone; earlier events are not sent
        max_past = timedelta(hours=settings.validation.collector_max_past_hours)
        self.oldest_us = int((now - max_past + _BACKDATE_MARGIN).timestamp() * MICROS)
        self.tally = Tally()
        self._http = _Http(host, port)
        self._producer = EventProducer(
            settings.kafka,
            window=history_window(settings.validation),
            rules=SiteRules.from_settings(settings),
        )
        self._open: OrderedDict[tuple[str, str], _Batch] = OrderedDict()  # oldest first
        self._sent: OrderedDict[str, _Sent] = OrderedDict()  # GA4 event id -> its request
        self._seen: set[str] = set()  # event ids sent by the SDK or a browser
        self._clock = 0  # the traffic's time: the latest event time seen
        self._sdk_visitors: set[tuple[str, str]] = set()
        self._browser_visitors: set[tuple[str, str]] = set()

    # -- routing ----------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> None:
        ts = parse_event_ts(event["event_ts"])
        day = self.local_day(ts)
        if day == self.today:
            self.tally.today_generated += 1
            self.tally.today_happened += ts <= self.now_us
        if ts > self.now_us:
            self.tally.not_yet += 1
            return
        if day < self.first_day:  # generated days are UTC's: another time zone's eve
            self.tally.before += 1
            return
        self._clock = max(self._clock, ts)
        self._send_due_batches()
        if event.get("visitor_scope") == "client":
            if ts < self.oldest_us:
                self.tally.too_old += 1
                return
            self._add_to_batch(event, ts)
            return
        visitor = (str(event["site_id"]), str(event["visitor_id"]))
        # A cookie-free visitor stays with the way they came first: one seen on a past
        # day is the back end's, even after midnight.
        if visitor not in self._browser_visitors and (
            visitor in self._sdk_visitors or day < self.today
        ):
            self._sdk_visitors.add(visitor)
            self._produce(event, ts)
        else:
            self._browser_visitors.add(visitor)
            self._post_browser_event(event)

    def close(self) -> None:
        """Send the requests still being filled; wait for Kafka to acknowledge the SDK's."""
        try:
            while self._open:
                self._send_batch(self._open.popitem(last=False)[1])
            self._producer.close()
        finally:
            self._http.close()

    def abandon(self) -> None:
        """Stop at once (an error, Ctrl-C): what is held is not sent."""
        self._http.close()
        with suppress(Exception):
            self._producer.close(timeout_s=1)

    def local_day(self, ts: int) -> date:
        return datetime.fromtimestamp(ts / MICROS, UTC).astimezone(self.zone).date()

    # -- the producer SDK -------------------------------------------------------------------

    def _produce(self, event: dict[str, Any], ts: int) -> None:
        self._producer.send(event)  # validated and scrubbed by the SDK
        self.tally.produced += 1
        event_id = str(event["event_id"])
        if event_id in self._seen:
            self.tally.repeats += 1
            return
        self._seen.add(event_id)
        day = self.tally.day(self.local_day(ts))
        day.sdk += 1
        day.page_views += event["event_name"] == "page_view"

    # -- browsers: PlainSignal bodies on /api/event -----------------------------------------

    def _post_browser_event(self, event: dict[str, Any]) -> None:
        event_id = str(event["event_id"])
        if event_id in self._seen:
            return  # a beacon is not retried
        self._seen.add(event_id)
        body = {
            "name": event["event_name"],
            "url": _url_with_click_id(event),
            "referrer": event.get("page_referrer"),
            "site_id": event["site_id"],
            "value": event.get("value"),
            "currency": event.get("currency"),
        }
        device = (
            str(event.get("device_category")),
            str(event.get("browser")),
            str(event.get("os")),
        )
        headers = {
            "Content-Type": "text/plain;charset=UTF-8",  # navigator.sendBeacon's
            "User-Agent": USER_AGENTS.get(device, _FALLBACK_USER_AGENT),
            CLIENT_IP_HEADER: _visitor_address(str(event["visitor_id"])),
        }
        if event.get("country"):
            headers[COUNTRY_HEADER] = str(event["country"])
        payload = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
        status, answer = self._post("/api/event", payload, headers)
        if status != 202:
            self._reject(_reason(answer), 1)
            return
        if json.loads(answer).get("accepted") != 1:
            self.tally.dropped += 1
            return
        day = self.tally.day(self.today)  # dated on receipt
        day.browser += 1
        day.page_views += event["event_name"] == "page_view"

    # -- GA4 senders: Measurement Protocol requests on /mp/collect ----------------------------

    def _add_to_batch(self, event: dict[str, Any], ts: int) -> None:
        event_id = str(event["event_id"])
        if event_id in self._sent:  # a repeat of an event already sent: retry its request
            sent = self._sent[event_id]
            if not sent.retried:
                sent.retried = True
                self._retry(sent)
            return
        key = (str(event["site_id"]), str(event["visitor_id"]))
        batch = self._open.get(key)
        if batch is not None and event_id in batch.event_ids:
            batch.retry = True  # the repeat comes while the request is still being filled
            return
        session_id, user_id = event.get("session_id"), event.get("user_id")
        if batch is not None and (
            batch.session_id != session_id
            or batch.user_id != user_id
            or len(batch.events) == GA4_MAX_EVENTS
        ):
            self._send_batch(self._open.pop(key))
            batch = None
        if batch is None:
            batch = _Batch(
                site=key[0],
                client_id=key[1],
                session_id=session_id,
                user_id=user_id,
                first_ts=ts,
                device={
                    name: str(event[field_name])
                    for name, field_name in (
                        ("category", "device_category"),
                        ("browser", "browser"),
                        ("operating_system", "os"),
                    )
                    if event.get(field_name)
                },
                country=event.get("country"),
            )
            self._open[key] = batch
        batch.events.append(_ga4_event(event, ts))
        batch.days.append(self.local_day(ts))
        batch.event_ids.append(event_id)

    def _send_due_batches(self) -> None:
        while self._open:
            batch = next(iter(self._open.values()))
            if batch.first_ts > self._clock - _BATCH_WINDOW_US:
                return
            self._send_batch(self._open.popitem(last=False)[1])

    def _send_batch(self, batch: _Batch) -> None:
        payload: dict[str, Any] = {"client_id": batch.client_id}
        if batch.user_id:
            payload["user_id"] = batch.user_id
        if batch.device:
            payload["device"] = batch.device
        if batch.country:
            payload["user_location"] = {"country_id": batch.country}
        payload["events"] = batch.events
        sent = _Sent(self._mp_path(batch.site), json.dumps(payload).encode(), batch.retry)
        rejected = self._post_ga4(sent)
        for index, (day, event) in enumerate(zip(batch.days, batch.events, strict=True)):
            if index in rejected:
                continue
            tally = self.tally.day(day)
            tally.ga4 += 1
            tally.page_views += event["name"] == "page_view"
        if batch.retry:
            self._retry(sent)
        for event_id in batch.event_ids:
            self._sent[event_id] = sent
        while len(self._sent) > _REMEMBERED_EVENTS:
            self._sent.popitem(last=False)

    def _retry(self, sent: _Sent) -> None:
        """The same request again, as a sender does when an answer was lost."""
        events = len(json.loads(sent.body)["events"])
        rejected = self._post_ga4(sent, count=False)
        self.tally.repeats += events - len(rejected)

    def _post_ga4(self, sent: _Sent, count: bool = True) -> set[int]:
        """Post a request; the indexes of the events the collector rejected."""
        headers = {"Content-Type": "application/json", "User-Agent": GA4_SENDER_USER_AGENT}
        status, answer = self._post(sent.path, sent.body, headers)
        if status == 204:
            return set()
        events = len(json.loads(sent.body)["events"])
        problems = json.loads(answer) if answer else {}
        listed = problems.get("rejected") if isinstance(problems, dict) else None
        if status == 400 and isinstance(listed, list):
            rejected = {p["index"] for p in listed if isinstance(p.get("index"), int)}
            if count:
                for problem in listed:
                    self._reject(str(problem.get("reason")), 1)
            return rejected
        if count:
            self._reject(_reason(answer), events)
        return set(range(events))

    def _mp_path(self, site: str) -> str:
        stream = self.settings.ga4.get(site)
        query = {"measurement_id": (stream.measurement_id if stream else None) or site}
        if stream is not None and stream.api_secret is not None:
            query["api_secret"] = stream.api_secret.get_secret_value()
        return f"/mp/collect?{urlencode(query)}"

    # -- shared -------------------------------------------------------------------------------

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.tally.requests += 1
        return self._http.post(path, body, headers)

    def _reject(self, reason: str, events: int) -> None:
        self.tally.rejected += events
        self.tally.reasons[reason] += events


def _ga4_event(event: dict[str, Any], ts: int) -> dict[str, Any]:
    """A canonical event as a GA4 sender describes it: name, params, its own time."""
    params: dict[str, Any] = {"page_location": _url_with_click_id(event)}
    if event.get("page_referrer"):
        params["page_referrer"] = event["page_referrer"]
    if event.get("session_id"):
        params["session_id"] = event["session_id"]
    if event.get("engagement_time_ms") is not None:
        params["engagement_time_msec"] = event["engagement_time_ms"]
    for name in ("value", "currency", "transaction_id"):
        if event.get(name) is not None:
            params[name] = event[name]
    return {"name": event["event_name"], "timestamp_micros": ts, "params": params}


def _url_with_click_id(event: dict[str, Any]) -> str:
    """The landing page as the browser had it: with the ad click id, which the collector
    turns into its type and drops."""
    url = str(event.get("page_url") or "")
    click_id = event.get("click_id_type")
    if not click_id:
        return url
    return f"{url}{'&' if '?' in url else '?'}{click_id}={str(event['event_id'])[:20]}"


def _visitor_address(visitor_id: str) -> str:
    """A stable IPv6 address per generated visitor (documentation prefix 2001:db8::/32):
    the collector hashes it, with the user agent and the day's salt, and keeps neither."""
    digits = hashlib.sha256(visitor_id.encode()).hexdigest()[:24]
    groups = [digits[i : i + 4] for i in range(0, 24, 4)]
    return "2001:db8:" + ":".join(groups)


def _reason(answer: bytes) -> str:
    try:
        reason = json.loads(answer).get("reason")
    except (ValueError, AttributeError):
        return "unreadable answer"
    return str(reason or "unknown")
