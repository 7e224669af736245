"""`@minimal-analytics/ga4` (gtag's /g/collect protocol, from npm) in real headless Chromium,
pointed at a running collector on the real broker."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from playwright.sync_api import Request, Response, sync_playwright

from tests.integration.conftest import RunningCollector, events_of, read_topic, serve_shop_pages
from tests.integration.gtag_support import MEASUREMENT_ID, gtag_collector
from tests.integration.test_tracker_chromium import CHROME, CHROMIUM_ARGS

CLIENT = Path(__file__).resolve().parents[2] / "node_modules/@minimal-analytics/ga4/dist/index.js"
# What the library itself keeps in the page's storage (its client id, session id and count).
LIBRARY_STORAGE = {"clientId", "sessionId", "sessionCount"}
LANDING = "/?utm_source=newsletter&utm_medium=email&utm_campaign=winter&gclid=secret-click"
PAGE = """<!doctype html>
<html><head><title>Shop | Home</title>
<script>window.minimalAnalytics = {
  trackingId: "MEASUREMENT_ID", analyticsEndpoint: "COLLECTOR/g/collect",
  autoTrack: true, defineGlobal: true};</script>
<script src="/ga4.js"></script>
</head><body>
<a id="product" href="/products/42"
   onclick="history.pushState({}, '', '/products/42?ref=jane@example.com'); track(); return false;"
>42</a>
<button id="buy" onclick="track({type: 'purchase', event: {
  'epn.value': 25.5, 'cu': 'USD', 'ep.transaction_id': 'T-1001'}})">Buy</button>
</body></html>"""


@pytest.fixture
def collector(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningCollector]:
    with gtag_collector(kafka_bootstrap, tmp_path) as running:
        yield running


@pytest.fixture
def site(collector: RunningCollector) -> Iterator[str]:
    """A page of shop.example with the npm client, both served on loopback."""
    assert CLIENT.exists(), "run `npm ci` at the repository root (make test does)"
    files = {
        "/ga4.js": (CLIENT.read_bytes(), "application/javascript"),
        "page": (
            PAGE.replace("COLLECTOR", collector.url)
            .replace("MEASUREMENT_ID", MEASUREMENT_ID)
            .encode(),
            "text/html",
        ),
    }

    def respond(path: str) -> tuple[int, str, bytes]:
        body, media_type = files.get(path, files["page"])
        return 200, media_type, body

    with serve_shop_pages(respond) as origin:
        yield origin


@dataclass
class Beacons:
    """What the browser sent to the collector, and what came back."""

    requests: list[Request] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)

    @staticmethod
    def params(request: Request) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(request.url).query))


def is_beacon(name: str) -> Callable[[Response], bool]:
    return lambda r: "/g/collect" in r.url and Beacons.params(r.request).get("en") == name


def test_page_views_spa_navigation_and_purchase_arrive(
    collector: RunningCollector, site: str
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    beacons = Beacons()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(user_agent=CHROME)
            context.on(
                "request", lambda r: beacons.requests.append(r) if "/g/collect" in r.url else None
            )
            context.on(
                "response",
                lambda r: beacons.responses.append(r) if "/g/collect" in r.url else None,
            )
            page = context.new_page()
            with page.expect_response(is_beacon("page_view")):
                page.goto(f"{site}{LANDING}")
            with page.expect_response(is_beacon("page_view")):
                page.click("#product")  # single-page-app navigation: the app calls track()
            # The library also reports the button's click (its "enhanced measurement").
            with (
                page.expect_response(is_beacon("purchase")),
                page.expect_response(is_beacon("click")),
            ):
                page.click("#buy")
            storage = page.evaluate(
                "[document.cookie, Object.keys(localStorage), Object.keys(sessionStorage),"
                " localStorage.getItem('clientId'), sessionStorage.getItem('sessionId')]"
            )
            cookies = context.cookies()
            answers = [(r.status, r.all_headers()) for r in beacons.responses]
            sent = [(r.method, r.url, r.post_data) for r in beacons.requests]
            page.close(run_before_unload=True)  # the library's user_engagement beacon
            messages = read_topic(collector.bootstrap, collector.topic, 5)
        finally:
            browser.close()

    document_cookie, local_keys, session_keys, client_id, session_id = storage
    # Nothing of ours in the browser: no cookie at all; the storage keys are the library's.
    assert cookies == [] and document_cookie == ""
    assert set(local_keys) | set(session_keys) <= LIBRARY_STORAGE
    assert len(answers) >= 4
    for status, headers in answers:
        assert status == 204
        assert "set-cookie" not in headers
        assert headers.get("content-length", "0") == "0"
        assert headers["access-control-allow-origin"] == site

    # What the client sent: query-string beacons (POST, no body) on gtag's parameter names.
    first = next(dict(parse_qsl(urlsplit(url).query)) for _, url, _ in sent)
    assert (first["v"], first["tid"], first["cid"], first["sid"], first["en"]) == (
        "2", MEASUREMENT_ID, client_id, session_id, "page_view",
    )  # fmt: skip
    assert {(method, body) for method, _, body in sent} == {("POST", None)}

    events = events_of(messages)
    raw = b"\n".join(messages).decode()
    for secret in (
        client_id,
        session_id,
        "secret-click",
        "jane@example.com",
        "Shop | Home",
        CHROME,
    ):
        assert secret not in raw
    by_name = sorted(events, key=lambda e: (str(e["event_name"]), str(e["page_url"])))
    assert [(e["event_name"], e["page_url"]) for e in by_name] == [
        ("click", f"{site}/products/42"),
        ("page_view", f"{site}{LANDING.removesuffix('&gclid=secret-click')}"),
        ("page_view", f"{site}/products/42"),
        ("purchase", f"{site}/products/42"),
        ("user_engagement", f"{site}/products/42"),
    ]
    click, landing, product, purchase, engagement = by_name
    assert {e["site_id"] for e in events} == {"shop.example"}
    # One session, one id: a keyed hash of the library's session id, never the raw value.
    (stored_session,) = {str(e["session_id"]) for e in events}
    assert len(stored_session) == 32 and stored_session != session_id
    assert len({e["visitor_id"] for e in events}) == 1
    assert {e["visitor_scope"] for e in events} == {"client"}
    assert (landing["utm_source"], landing["utm_campaign"], landing["click_id_type"]) == (
        "newsletter", "winter", "gclid",
    )  # fmt: skip
    assert landing["device_category"] == "desktop" and landing["browser"] == "Chrome"
    assert (purchase["value"], purchase["currency"], purchase["transaction_id"]) == (
        25.5, "USD", "T-1001",
    )  # fmt: skip
    assert isinstance(engagement["engagement_time_ms"], int)
    assert isinstance(click["engagement_time_ms"], int)
    assert "page_referrer" not in landing and "page_referrer" not in product  # typed in
    assert "user_id" not in purchase and "title" not in json.dumps(events)
