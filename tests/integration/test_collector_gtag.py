"""`/g/collect` on a running collector and the real broker, with requests built from GA4's
web protocol as gtag.js sends them: shared params in the query string, one event per body
line (`\\r\\n`-separated, `text/plain`), or a query string alone (GET, or a URL-only beacon)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.integration.conftest import RunningCollector, events_of, read_topic
from tests.integration.gtag_support import MEASUREMENT_ID, gtag_collector

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
ORIGIN = "https://www.shop.example"
CLIENT_ID = "1460298742.1731002400"
USER_ID = "crm-customer-zq9-4711"
IP = "203.0.113.58"
LANDING = f"{ORIGIN}/winter?utm_source=newsletter&utm_medium=email&utm_campaign=w24&gclid=zq9click"
SHARED = {
    "v": "2",
    "tid": MEASUREMENT_ID,
    "gtm": "45je4bk0v9181613826za200",
    "_p": "1731002411982",
    "gcd": "13l3l3l3l1l1",
    "npa": "0",
    "dma": "0",
    "cid": CLIENT_ID,
    "ul": "de-de",
    "sr": "1920x1080",
    "uaa": "x86",
    "uab": "64",
    "uamb": "0",
    "uap": "Linux",
    "are": "1",
    "frm": "0",
    "pscdl": "noapi",
    "_s": "2",
    "sid": "1731002400",
    "sct": "4",
    "seg": "1",
    "dl": LANDING,
    "dr": "https://mail.example/inbox?to=jane.zq9@example.com",
    "dt": "Winter sale | Shop",
    "uid": USER_ID,
}
HEADERS = {
    "User-Agent": CHROME,
    "X-Forwarded-For": IP,
    "CF-IPCountry": "AT",
    "Origin": ORIGIN,
    "Content-Type": "text/plain;charset=UTF-8",  # what gtag.js's beacons carry
}


def url(collector: RunningCollector, **params: str) -> str:
    return f"{collector.url}/g/collect?{urlencode({**SHARED, **params})}"


@pytest.fixture
def collector(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningCollector]:
    with gtag_collector(kafka_bootstrap, tmp_path) as running:
        yield running


@pytest.fixture(scope="module")
def module_collector(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCollector]:
    with gtag_collector(kafka_bootstrap, tmp_path_factory.mktemp("gtag")) as running:
        yield running


def assert_taken(response: httpx.Response) -> None:
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert "set-cookie" not in response.headers
    assert response.headers["access-control-allow-origin"] == ORIGIN


def test_batched_bodies_and_query_only_hits_reach_kafka(collector: RunningCollector) -> None:
    batch = (
        "en=page_view&_ee=1&_et=6\r\n"
        "en=scroll&epn.percent_scrolled=90&_et=5200\r\n"
        "en=purchase&_c=1&cu=EUR&epn.value=59.9&ep.transaction_id=T-2024-77"
        "&pr1=idSKU_1~nmParka~pr59.9~qt1&epn.shipping=0\r\n"
        "en=user_engagement&_et=12000"
    )
    assert_taken(httpx.post(url(collector), content=batch, headers=HEADERS))
    # gtag.js sends a lone event as a query string, by GET or as a URL-only beacon.
    assert_taken(httpx.get(url(collector, en="page_view", _s="5"), headers=HEADERS))
    beacon = {k: v for k, v in HEADERS.items() if k != "Content-Type"}
    assert_taken(httpx.post(url(collector, en="sign_up", _s="6"), headers=beacon))
    # A line of its own may override a shared param (here the page).
    spa = f"en=page_view&dl={ORIGIN}%2Fcart&dr=&_et=40"
    assert_taken(httpx.post(url(collector), content=spa, headers=HEADERS))

    # A HEAD (a link checker's probe) is answered and counts nothing.
    assert httpx.head(url(collector, en="page_view"), headers=HEADERS).status_code == 204

    messages = read_topic(collector.bootstrap, collector.topic, 7)
    assert len(messages) == 7
    collector.stop()  # flush its logs
    haystacks = {"kafka": b"\n".join(messages).decode(), "collector log": collector.log_text()}
    for where, text in haystacks.items():
        for secret in (CLIENT_ID, USER_ID, IP, "X11", "zq9click", "jane.zq9", "Winter sale"):
            assert secret not in text, f"{secret!r} leaked into {where}"

    events = events_of(messages)
    by_name: dict[str, list[dict[str, object]]] = {}
    for event in events:
        by_name.setdefault(str(event["event_name"]), []).append(event)
    assert sorted((name, len(group)) for name, group in by_name.items()) == [
        ("page_view", 3), ("purchase", 1), ("scroll", 1), ("sign_up", 1), ("user_engagement", 1),
    ]  # fmt: skip
    assert {e["site_id"] for e in events} == {"shop.example"}
    assert len({e["visitor_id"] for e in events}) == 1
    assert len({e["user_id"] for e in events}) == 1
    assert {e["visitor_scope"] for e in events} == {"client"}
    # One client session, one id: a keyed hash of `sid`, never the raw value.
    (session,) = {str(e["session_id"]) for e in events}
    assert len(session) == 32 and session != "1731002400"
    assert {e["country"] for e in events} == {"AT"}
    assert {(e["device_category"], e["browser"]) for e in events} == {("desktop", "Chrome")}
    assert len({e["event_id"] for e in events}) == 7

    (purchase,) = by_name["purchase"]
    assert (purchase["value"], purchase["currency"], purchase["transaction_id"]) == (
        59.9, "EUR", "T-2024-77",
    )  # fmt: skip
    assert purchase["page_url"] == (
        f"{ORIGIN}/winter?utm_source=newsletter&utm_medium=email&utm_campaign=w24"
    )
    assert (purchase["utm_source"], purchase["utm_campaign"], purchase["click_id_type"]) == (
        "newsletter", "w24", "gclid",
    )  # fmt: skip
    assert purchase["page_referrer"] == "https://mail.example/inbox"
    (signal,) = by_name["user_engagement"]
    assert signal["engagement_time_ms"] == 12000
    assert by_name["scroll"][0]["engagement_time_ms"] == 5200
    cart = next(e for e in by_name["page_view"] if e["page_url"] == f"{ORIGIN}/cart")
    assert "page_referrer" not in cart and "utm_source" not in cart


def test_bad_requests_get_reasons_and_a_batch_keeps_its_valid_events(
    module_collector: RunningCollector,
) -> None:
    collector = module_collector

    def post(target: str, body: str = "", **headers: str) -> httpx.Response:
        return httpx.post(target, content=body, headers={**HEADERS, **headers})

    cases = {
        "unknown measurement id": (post(url(collector, tid="G-NOTOURS1", en="x")), "unknown_site"),
        "no client id": (
            post(f"{collector.url}/g/collect?v=2&tid={MEASUREMENT_ID}&en=page_view"),
            "missing_field",
        ),
        "universal analytics": (post(url(collector, v="1", en="x")), "bad_enum"),
        "no event name": (post(url(collector)), "missing_field"),
        "nothing at all": (post(f"{collector.url}/g/collect"), "no_events"),
    }
    for case, (response, reason) in cases.items():
        assert response.status_code == 400, case
        assert response.json()["reason"] == reason, case
        assert "set-cookie" not in response.headers
    xml = post(url(collector, en="x"), "<x/>", **{"Content-Type": "application/xml"})
    assert xml.status_code == 415

    mixed = post(url(collector), "en=page_view\r\nen=9lives\r\nen=purchase&epn.value=-3\r\nen=ok")
    assert mixed.status_code == 400
    answer = mixed.json()
    assert answer["accepted"] == 2
    assert [(p["index"], p["reason"]) for p in answer["rejected"]] == [
        (1, "bad_event_name"),
        (2, "negative_amount"),
    ]
    too_large = post(url(collector), "en=page_view&ep.x=" + "a" * 70_000)
    assert too_large.status_code == 413

    bot = post(url(collector, en="page_view"), **{"User-Agent": "Googlebot/2.1"})
    assert bot.status_code == 204 and bot.content == b""


def test_cors_for_the_sites_pages_only(module_collector: RunningCollector) -> None:
    target = f"{module_collector.url}/g/collect"
    for origin, allowed in (
        ("https://shop.example", True),
        ("http://www.blog.example:8080", True),
        ("https://evil.example", False),
    ):
        preflight = httpx.options(
            target,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
        assert "set-cookie" not in preflight.headers
