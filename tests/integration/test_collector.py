"""Both dialects through a running collector into the real broker, and bad input."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator

from pipeline.events.schema import load_schema
from tests.integration.conftest import RunningCollector, events_of, read_topic

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def post(collector: RunningCollector, path: str, body: Any, **headers: str) -> httpx.Response:
    content = (
        body if isinstance(body, bytes | str) else httpx.Request("POST", "/", json=body).content
    )
    return httpx.post(f"{collector.url}{path}", content=content, headers=headers, timeout=10)


def test_both_dialects_arrive_as_canonical_events(collector: RunningCollector) -> None:
    browser = {
        "User-Agent": IPHONE,
        "Content-Type": "text/plain",
        "X-Forwarded-For": "198.51.100.7",
    }
    landing = "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=nov"
    assert (
        post(collector, "/api/event", {"name": "page_view", "url": landing}, **browser).status_code
        == 202
    )
    assert (
        post(
            collector,
            "/api/event",
            {
                "name": "purchase",
                "url": "https://shop.example/thanks",
                "value": 42.5,
                "currency": "EUR",
            },
            **browser,
        ).status_code
        == 202
    )
    ga4 = {
        "client_id": "1234567.7654321",
        "user_id": "customer-99",
        "events": [
            {
                "name": "page_view",
                "params": {
                    "page_location": "https://blog.example/post",
                    "session_id": 1731000000,
                    "engagement_time_msec": "1200",
                },
            },
            {
                "name": "sign_up",
                "params": {
                    "session_id": "1731000000",
                    "source": "google",
                    "medium": "cpc",
                    "campaign": "brand",
                },
            },
        ],
    }
    response = post(
        collector,
        "/mp/collect?measurement_id=blog.example",
        ga4,
        **{"Content-Type": "application/json"},
    )
    assert response.status_code == 204

    events = {
        (e["site_id"], e["event_name"]): e
        for e in events_of(read_topic(collector.bootstrap, collector.topic, 4))
    }
    assert set(events) == {
        ("shop.example", "page_view"), ("shop.example", "purchase"),
        ("blog.example", "page_view"), ("blog.example", "sign_up"),
    }  # fmt: skip
    landing_event = events[("shop.example", "page_view")]
    assert landing_event["utm_source"] == "newsletter"
    assert landing_event["utm_campaign"] == "nov"
    assert landing_event["device_category"] == "mobile"
    assert landing_event["os"] == "iOS"
    purchase = events[("shop.example", "purchase")]
    assert (purchase["value"], purchase["currency"]) == (42.5, "EUR")
    # Cookie-free: the same browser on the same day is one visitor.
    assert purchase["visitor_id"] == landing_event["visitor_id"]
    assert "session_id" not in landing_event

    ga4_view, ga4_signup = (
        events[("blog.example", "page_view")],
        events[("blog.example", "sign_up")],
    )
    assert ga4_view["visitor_id"] == ga4_signup["visitor_id"] != "1234567.7654321"
    # One client session, one id: a keyed hash, never the raw ga_session_id.
    assert ga4_view["session_id"] == ga4_signup["session_id"] != "1731000000"
    assert ga4_view["engagement_time_ms"] == 1200
    assert ga4_signup["utm_source"] == "google"
    assert ga4_signup["user_id"] not in (None, "customer-99")
    schema = Draft202012Validator(load_schema("canonical_event"))
    for event in events.values():
        assert str(event["event_ts"]).endswith("Z")
        schema.validate(event)


def test_mixed_ga4_batch_keeps_the_valid_events(collector: RunningCollector) -> None:
    batch = {
        "client_id": "555.666",
        "events": [
            {"name": "page_view", "params": {"page_location": "https://shop.example/a"}},
            {"name": "9starts_with_digit"},
            {"name": "purchase", "params": {"value": "12", "currency": "USD"}},
            {"name": "add_to_cart", "params": {"value": 3.5, "currency": "USD"}},
            {"name": "x", "params": {"currency": "usd"}},
        ],
    }
    response = post(collector, "/mp/collect?measurement_id=shop.example", batch)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2
    assert [(p["index"], p["reason"]) for p in body["rejected"]] == [
        (1, "bad_event_name"), (2, "wrong_type"), (4, "bad_currency"),
    ]  # fmt: skip
    names = sorted(
        str(e["event_name"]) for e in events_of(read_topic(collector.bootstrap, collector.topic, 2))
    )
    assert names == ["add_to_cart", "page_view"]


def test_bots_and_opt_out_are_dropped_not_rejected(collector: RunningCollector) -> None:
    bot = post(collector, "/api/event", {"name": "page_view", "url": "https://shop.example/"},
               **{"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"})  # fmt: skip
    assert (bot.status_code, bot.json()["dropped"]) == (202, "bot")
    health = httpx.get(f"{collector.url}/health").json()
    assert health["outcomes"]["dropped:bot"] == 1
    assert "accepted" not in health["outcomes"]


def test_no_cookie_and_cors_for_configured_sites(collector: RunningCollector) -> None:
    response = httpx.options(
        f"{collector.url}/api/event",
        headers={"Origin": "https://www.shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.headers["access-control-allow-origin"] == "https://www.shop.example"
    foreign = httpx.options(
        f"{collector.url}/api/event",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in foreign.headers
    for response in (
        post(
            collector,
            "/api/event",
            {"name": "page_view", "url": "https://shop.example/"},
            **{"User-Agent": CHROME},
        ),
        httpx.get(f"{collector.url}/t.js"),
        httpx.get(f"{collector.url}/health"),
    ):
        assert "set-cookie" not in response.headers
    tracker = httpx.get(f"{collector.url}/t.js")
    assert tracker.headers["content-type"].startswith("application/javascript")
    assert b"sendBeacon" in tracker.content
