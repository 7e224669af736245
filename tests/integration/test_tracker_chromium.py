"""The tracker in real headless Chromium (Debian's), against a running collector and broker."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright

from tests.integration.conftest import RunningCollector, events_of, read_topic, serve_shop_pages

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# Flags for a closed network: no background calls home, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP shop.example 127.0.0.1",
]  # fmt: skip

LANDING = "/?utm_source=newsletter&utm_medium=email&utm_campaign=nov"
PAGE = """<!doctype html>
<html><head>
<script>window.sessionflow = window.sessionflow || function () {
  (window.sessionflow.q = window.sessionflow.q || []).push(arguments); };</script>
<script defer src="COLLECTOR/t.js" data-site="shop.example"></script>
</head><body>
<a id="product" href="/products/42"
   onclick="history.pushState({}, '', '/products/42?ref=jane@example.com'); return false;">42</a>
<button id="buy" onclick="sessionflow('event', 'purchase', {value: 25.5, currency: 'usd'})">Buy</button>
</body></html>"""


@pytest.fixture
def site(collector: RunningCollector) -> Iterator[str]:
    """A page of shop.example that embeds the tracker, served on loopback."""
    page = PAGE.replace("COLLECTOR", collector.url).encode()
    with serve_shop_pages(lambda _path: (200, "text/html", page)) as origin:
        yield origin


def test_page_views_and_custom_event_arrive_without_cookies(
    collector: RunningCollector, site: str
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(user_agent=CHROME)
            page = context.new_page()
            page.goto(f"{site}{LANDING}")
            page.wait_for_function(
                "typeof window.sessionflow === 'function' && !window.sessionflow.q"
            )
            page.click("#product")  # single-page-app navigation
            page.click("#buy")
            events = events_of(read_topic(collector.bootstrap, collector.topic, 3))
            storage = page.evaluate("[document.cookie, localStorage.length, sessionStorage.length]")
            cookies = context.cookies()
        finally:
            browser.close()

    assert cookies == []
    assert storage == ["", 0, 0]
    by_name = sorted(events, key=lambda e: (str(e["event_name"]), str(e["page_url"])))
    assert [(e["event_name"], e["page_url"]) for e in by_name] == [
        ("page_view", f"{site}{LANDING}"),
        ("page_view", f"{site}/products/42"),
        ("purchase", f"{site}/products/42"),
    ]
    purchase = by_name[-1]
    assert (purchase["value"], purchase["currency"]) == (25.5, "USD")
    landing = by_name[0]
    assert (landing["utm_source"], landing["utm_campaign"]) == ("newsletter", "nov")
    assert landing["device_category"] == "desktop" and landing["browser"] == "Chrome"
    assert len({e["visitor_id"] for e in events}) == 1
