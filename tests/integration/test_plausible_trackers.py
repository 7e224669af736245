"""Plausible's own npm trackers in real headless Chromium (Debian's), pointed at a running
collector (their custom host), on the real broker: `@plausible-analytics/tracker` 0.4.6 and
`plausible-tracker` 0.3.9, as `make js-clients` installs them (npm ci, package-lock.json).

Each page loads the package's ES module build straight from node_modules/, served on
loopback with the page (the 0.3 build's extensionless imports are mapped by an import
map): no bundler, no network besides localhost.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Request, Response, sync_playwright

from tests.integration.conftest import RunningCollector, events_of, read_topic, serve_shop_pages
from tests.integration.test_tracker_chromium import CHROME, CHROMIUM_ARGS

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
LANDING = "/?utm_source=newsletter&utm_medium=email&utm_campaign=nov"
PRODUCT = "/products/42?ref=jane@example.com"  # the address must not survive scrubbing
REFERRER = "https://www.google.com/"
WAIT_MS = 15_000  # for one tracker request to be answered

# @plausible-analytics/tracker 0.4: ES module; auto page views follow history.pushState.
# navigator.webdriver is true under Playwright, and the tracker ignores such browsers
# unless window.__plausible is set (Plausible's own switch for its tests).
NEW_TRACKER_PAGE = """<!doctype html>
<html><head>
<script>window.__plausible = true;</script>
<script type="module">
  import {init, track} from '/node_modules/@plausible-analytics/tracker/plausible.js';
  init({domain: 'shop.example', endpoint: 'COLLECTOR/api/event'});
  window.shop = {
    navigate: () => history.pushState({}, '', 'PRODUCT'),
    buy: () => track('Purchase', {
      revenue: {amount: 25.5, currency: 'EUR'},
      props: {transaction_id: 'T-1001', plan: 'pro'},
    }),
  };
</script>
</head><body><p>shop</p></body></html>"""

# plausible-tracker 0.3: page views by hand, the SPA one with another url. It has no
# revenue API: its "Purchase" is a custom event with props only.
OLD_BUILD = "/node_modules/plausible-tracker/build/module"
OLD_TRACKER_PAGE = """<!doctype html>
<html><head>
<script type="importmap">{"imports": {
  "plausible-tracker": "BUILD/index.js",
  "BUILD/lib/tracker": "BUILD/lib/tracker.js",
  "BUILD/lib/request": "BUILD/lib/request.js"
}}</script>
<script type="module">
  import Plausible from 'plausible-tracker';
  const {trackEvent, trackPageview} = Plausible({domain: 'shop.example', apiHost: 'COLLECTOR'});
  trackPageview();
  window.shop = {
    navigate: () => {
      history.pushState({}, '', 'PRODUCT');
      trackPageview({url: location.href});
    },
    buy: () => trackEvent('Purchase', {props: {transaction_id: 'T-7', plan: 'pro'}}),
  };
</script>
</head><body><p>shop</p></body></html>""".replace("BUILD", OLD_BUILD)


@dataclass
class Traffic:
    """What the page sent to the collector and got back, and every host it asked."""

    collector: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[int, str, list[str]]] = field(default_factory=list)  # status, body, headers
    hosts: set[str] = field(default_factory=set)

    def on_request(self, request: Request) -> None:
        self.hosts.add(urlsplit(request.url).netloc)

    def on_response(self, response: Response) -> None:
        if response.url.startswith(self.collector) and response.request.method == "POST":
            self.bodies.append(json.loads(response.request.post_data or "null"))
            names = [header["name"].lower() for header in response.headers_array()]
            self.answers.append((response.status, response.text(), names))


def serve_shop(page_html: str) -> Callable[[], Iterator[str]]:
    """A shop.example origin on loopback: node_modules/ files, else the page (an SPA)."""

    def respond(path: str) -> tuple[int, str, bytes]:
        if not path.startswith("/node_modules/"):
            return 200, "text/html", page_html.encode()
        file = (NODE_MODULES / path.removeprefix("/node_modules/")).resolve()
        if file.is_relative_to(NODE_MODULES) and file.is_file():
            return 200, "text/javascript", file.read_bytes()
        return 404, "text/plain", b"not found"

    def running() -> Iterator[str]:
        with serve_shop_pages(respond) as origin:
            yield origin

    return running


def page_of(template: str, collector: RunningCollector) -> str:
    assert (NODE_MODULES / ".installed").exists(), "run `make js-clients` (npm ci) first"
    return template.replace("COLLECTOR", collector.url).replace("PRODUCT", PRODUCT)


@pytest.fixture
def new_tracker_site(collector: RunningCollector) -> Iterator[str]:
    yield from serve_shop(page_of(NEW_TRACKER_PAGE, collector))()


@pytest.fixture
def old_tracker_site(collector: RunningCollector) -> Iterator[str]:
    yield from serve_shop(page_of(OLD_TRACKER_PAGE, collector))()


def sent(name: str) -> Callable[[Response], bool]:
    """A predicate: the tracker's POST of an event named `name` was answered."""

    def matches(response: Response) -> bool:
        post = response.request.post_data
        return response.request.method == "POST" and post is not None and f'"n":"{name}"' in post

    return matches


@dataclass
class Visit:
    traffic: Traffic
    events: list[dict[str, Any]]
    storage: list[Any]
    cookies: list[Any]


def visit(collector: RunningCollector, site: str, navigation_sends: list[str]) -> Visit:
    """Land from a search engine, navigate within the SPA (which sends the events named
    in `navigation_sends`), buy; every step waits for the collector's answers to that
    step's requests, then the topic is read."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    traffic = Traffic(collector.url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(user_agent=CHROME)
            context.on("request", traffic.on_request)
            context.on("response", traffic.on_response)
            page = context.new_page()
            with answered(page, ["pageview"]):
                page.goto(f"{site}{LANDING}", referer=REFERRER)
            page.wait_for_function("typeof window.shop === 'object'", timeout=WAIT_MS)
            with answered(page, navigation_sends):
                page.evaluate("window.shop.navigate()")
            with answered(page, ["Purchase"]):
                page.evaluate("window.shop.buy()")
            messages = read_topic(collector.bootstrap, collector.topic, len(traffic.bodies))
            storage = page.evaluate("[document.cookie, localStorage.length, sessionStorage.length]")
            cookies = context.cookies()
        finally:
            browser.close()
    return Visit(traffic, events_of(messages), storage, cookies)


@contextmanager
def answered(page: Page, names: list[str]) -> Iterator[None]:
    """Waits (bounded) until the collector answered a request for each event in `names`."""
    with ExitStack() as stack:
        for name in names:
            stack.enter_context(page.expect_response(sent(name), timeout=WAIT_MS))
        yield


def assert_private(visit: Visit, site: str, collector: RunningCollector) -> None:
    assert visit.cookies == []
    assert visit.storage == ["", 0, 0]
    assert visit.traffic.answers, "the tracker sent nothing"
    for status, body, headers in visit.traffic.answers:
        assert (status, body) == (202, "ok")  # Plausible's answer
        assert "set-cookie" not in headers
    # Only the page's own origin and the collector were asked for anything.
    assert visit.traffic.hosts <= {urlsplit(site).netloc, urlsplit(collector.url).netloc}
    # Every event the tracker sent is one canonical event; props other than
    # transaction_id never leave the collector, nor does the e-mail in the product URL.
    assert len(visit.events) == len(visit.traffic.bodies)
    assert "plan" not in json.dumps(visit.events) and "jane" not in json.dumps(visit.events)
    assert len({event["visitor_id"] for event in visit.events}) == 1


def by_name(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return sorted(
        (event for event in events if event["event_name"] == name),
        key=lambda event: str(event["event_ts"]),
    )


def test_plausible_analytics_tracker_0_4(
    collector: RunningCollector, new_tracker_site: str
) -> None:
    site = new_tracker_site
    seen = visit(collector, site, navigation_sends=["engagement", "pageview"])

    assert_private(seen, site, collector)
    # The body shape the 0.4 tracker sends.
    pageview_body = next(body for body in seen.traffic.bodies if body["n"] == "pageview")
    assert pageview_body.keys() == {"n", "v", "u", "d", "r"}
    purchase_body = next(body for body in seen.traffic.bodies if body["n"] == "Purchase")
    assert purchase_body["$"] == {"amount": 25.5, "currency": "EUR"}
    assert isinstance(purchase_body["p"], dict)
    # Leaving the landing page for the product page sends the landing page's engagement.
    assert any(body["n"] == "engagement" and "e" in body for body in seen.traffic.bodies)

    landing, product = by_name(seen.events, "page_view")
    assert landing["page_url"] == f"{site}{LANDING}"
    assert (landing["utm_source"], landing["utm_campaign"]) == ("newsletter", "nov")
    assert landing["page_referrer"] == REFERRER
    assert landing["site_id"] == "shop.example"
    assert landing["device_category"] == "desktop" and landing["browser"] == "Chrome"
    assert product["page_url"] == f"{site}/products/42"
    (purchase,) = by_name(seen.events, "Purchase")
    assert (purchase["value"], purchase["currency"]) == (25.5, "EUR")
    assert purchase["transaction_id"] == "T-1001"
    assert purchase["page_url"] == f"{site}/products/42"
    assert purchase["site_id"] == "shop.example"
    engagement = by_name(seen.events, "engagement")[0]
    assert engagement["page_url"] == f"{site}{LANDING}"
    assert isinstance(engagement["engagement_time_ms"], int)
    assert engagement["engagement_time_ms"] >= 0


def test_plausible_tracker_0_3(collector: RunningCollector, old_tracker_site: str) -> None:
    site = old_tracker_site
    seen = visit(collector, site, navigation_sends=["pageview"])

    assert_private(seen, site, collector)
    # The body shape the 0.3 tracker sends: w and h always, props as a JSON string.
    pageview_body = next(body for body in seen.traffic.bodies if body["n"] == "pageview")
    assert pageview_body.keys() == {"n", "u", "d", "r", "w", "h"}
    purchase_body = next(body for body in seen.traffic.bodies if body["n"] == "Purchase")
    assert json.loads(purchase_body["p"]) == {"transaction_id": "T-7", "plan": "pro"}
    assert len(seen.traffic.bodies) == 3  # no engagement events in 0.3

    landing, product = by_name(seen.events, "page_view")
    assert landing["page_url"] == f"{site}{LANDING}"
    assert landing["page_referrer"] == REFERRER
    assert landing["site_id"] == "shop.example"
    assert product["page_url"] == f"{site}/products/42"
    (purchase,) = by_name(seen.events, "Purchase")
    assert purchase["transaction_id"] == "T-7"
    assert "value" not in purchase and "currency" not in purchase  # 0.3 sends no revenue
    assert purchase["page_url"] == f"{site}/products/42"
