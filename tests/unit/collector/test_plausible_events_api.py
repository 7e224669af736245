"""`POST /api/event` bodies: Plausible's Events API (as its npm trackers send it) beside the
PlainSignal style, parsed and then taken through the collector's enrichment steps.

The bodies are the ones the trackers were seen to send in Chromium
(tests/integration/test_plausible_trackers.py): `@plausible-analytics/tracker` 0.4.6 and
`plausible-tracker` 0.3.9.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.collector.app import create_app
from pipeline.collector.enrichment import Ingestor, RequestContext
from pipeline.collector.kafka_sink import KafkaSink
from pipeline.collector.plainsignal import ApiEvent, parse_api_event, parse_plainsignal
from pipeline.config import Settings, load_settings
from pipeline.events.reasons import Rejected
from pipeline.events.timestamps import parse_event_ts
from pipeline.events.validation import Event
from tests.unit.collector.sinks import RecordingSink

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
NOW = parse_event_ts("2026-11-20T12:00:00Z")
PAGE = "https://shop.example/products/42"

# What the 0.4 tracker sent (pageview, tagged-event `$: {}`, revenue, engagement).
NEW_PAGEVIEW = {"n": "pageview", "v": 36, "u": PAGE, "d": "shop.example", "r": None}
NEW_REVENUE = {
    "n": "Purchase",
    "v": 36,
    "u": PAGE,
    "d": "shop.example",
    "r": None,
    "p": {"transaction_id": "T-1001", "plan": "pro"},
    "$": {"amount": 25.5, "currency": "EUR"},
}
NEW_ENGAGEMENT = {
    "n": "engagement",
    "sd": 100,
    "d": "shop.example",
    "u": PAGE,
    "p": {},
    "e": 1534,
    "v": 36,
}
# What the 0.3 tracker sent: `w`, `h` always, props as a JSON string.
OLD_EVENT = {
    "n": "Signup",
    "u": PAGE,
    "d": "shop.example",
    "r": "https://duckduckgo.com/",
    "w": 1280,
    "h": 0,
    "p": '{"transaction_id":"T-7","tier":"startup"}',
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "SESSIONFLOW_DATA_DIR": str(tmp_path),
            "SESSIONFLOW_SITES": '["shop.example", "blog.example"]',
        }
    )


def parsed(body: dict[str, Any]) -> ApiEvent:
    return parse_api_event(json.dumps(body).encode())


def canonical(settings: Settings, body: dict[str, Any], user_agent: str = CHROME) -> Event:
    request = RequestContext("198.51.100.9", user_agent, {"user-agent": user_agent}, NOW)
    return Ingestor(settings).to_canonical(parsed(body).hit, request)


def rejection(body: dict[str, Any]) -> str:
    with pytest.raises(Rejected) as caught:
        parsed(body)
    return caught.value.line()


# -- the two shapes ---------------------------------------------------------------------


def test_a_plainsignal_body_is_still_plainsignal() -> None:
    body = {
        "name": "purchase",
        "url": PAGE,
        "value": 9.5,
        "currency": "USD",
        "site_id": "shop.example",
    }
    event = parsed(body)
    assert event.shape == "plainsignal"
    assert (event.hit.event_name, event.hit.value, event.hit.site_id) == (
        "purchase",
        9.5,
        "shop.example",
    )
    # A PlainSignal body keeps its own names: "pageview" is not renamed there.
    assert parsed({"name": "pageview", "url": PAGE}).hit.event_name == "pageview"


def test_plausible_keys_make_a_plausible_body() -> None:
    assert parsed(NEW_PAGEVIEW).shape == "plausible"
    assert parsed(OLD_EVENT).shape == "plausible"
    # Plausible's long names (its server-side docs), told apart by domain/props/revenue.
    long_form = {"name": "pageview", "url": PAGE, "domain": "shop.example", "props": {"a": "b"}}
    assert parsed(long_form).shape == "plausible"
    assert parsed(long_form).hit.event_name == "page_view"


def test_parse_plainsignal_alone_still_refuses_plausible_keys() -> None:
    with pytest.raises(Rejected, match="unknown_field: unknown field 'd'"):
        parse_plainsignal(json.dumps(NEW_PAGEVIEW).encode())


def test_mixing_the_shapes_is_an_unknown_field() -> None:
    assert (
        rejection({**NEW_PAGEVIEW, "site_id": "shop.example"})
        == "unknown_field: unknown field 'site_id'"
    )
    assert rejection({**NEW_PAGEVIEW, "value": 3}) == "unknown_field: unknown field 'value'"
    assert rejection({**NEW_PAGEVIEW, "x": 1}) == "unknown_field: unknown field 'x'"


# -- the field mapping ------------------------------------------------------------------


def test_pageview_maps_to_a_canonical_page_view(settings: Settings) -> None:
    body = {
        **NEW_PAGEVIEW,
        "u": "https://www.shop.example/a?utm_source=news&email=jane@example.com#top",
        "d": "www.shop.example",
        "r": "https://www.google.com/search?q=secret",
    }
    event = canonical(settings, body)
    assert event["event_name"] == "page_view"
    assert event["site_id"] == "shop.example"  # www. stripped, as Plausible does
    assert event["page_url"] == "https://www.shop.example/a?utm_source=news"  # scrubbed
    assert event["page_referrer"] == "https://www.google.com/search"
    assert event["utm_source"] == "news"
    assert event["visitor_scope"] == "daily" and len(event["visitor_id"]) == 32
    assert event["browser"] == "Chrome" and event["device_category"] == "desktop"
    assert "value" not in event and "engagement_time_ms" not in event


def test_the_site_defaults_to_the_url_host_as_in_plausible(settings: Settings) -> None:
    body = {"n": "pageview", "u": "https://www.blog.example/post"}
    assert canonical(settings, body)["site_id"] == "blog.example"


def test_revenue_becomes_value_and_currency_under_the_name_sent(settings: Settings) -> None:
    event = canonical(settings, NEW_REVENUE)
    assert (event["event_name"], event["value"], event["currency"]) == ("Purchase", 25.5, "EUR")
    assert event["transaction_id"] == "T-1001"
    # A decimal string (tagged events) and a lower-case currency are taken too.
    tagged = {**NEW_REVENUE, "$": {"amount": "10.29", "currency": "usd"}}
    assert (canonical(settings, tagged)["value"], canonical(settings, tagged)["currency"]) == (
        10.29,
        "USD",
    )
    # `$` as a JSON string, as Plausible decodes it.
    as_text = {**NEW_REVENUE, "$": '{"amount": 3, "currency": "GBP"}'}
    assert canonical(settings, as_text)["value"] == 3


def test_an_empty_revenue_object_is_no_revenue(settings: Settings) -> None:
    # The 0.4 tracker sends `$: {}` with every tagged event without revenue classes.
    event = canonical(settings, {**NEW_PAGEVIEW, "n": "Signup", "$": {}})
    assert "value" not in event and "currency" not in event


def test_props_keep_only_what_the_canonical_schema_has(settings: Settings) -> None:
    new = canonical(settings, NEW_REVENUE)
    old = canonical(settings, OLD_EVENT)
    assert old["transaction_id"] == "T-7" and old["event_name"] == "Signup"
    for event in (new, old):
        assert "plan" not in json.dumps(event) and "startup" not in json.dumps(event)
    numeric = canonical(settings, {**NEW_PAGEVIEW, "p": {"transaction_id": 1001}})
    assert numeric["transaction_id"] == "1001"


def test_engagement_carries_its_engaged_milliseconds(settings: Settings) -> None:
    event = canonical(settings, NEW_ENGAGEMENT)
    assert (event["event_name"], event["engagement_time_ms"]) == ("engagement", 1534)
    assert event["page_url"] == PAGE
    # Scroll depth alone is a valid engagement event (no engagement time then).
    scroll_only = {key: value for key, value in NEW_ENGAGEMENT.items() if key != "e"}
    assert "engagement_time_ms" not in canonical(settings, scroll_only)
    # Integers as text are read as Plausible reads them; a time of 30 days or more is
    # ignored (old trackers sent such values).
    assert canonical(settings, {**NEW_ENGAGEMENT, "e": "2500"})["engagement_time_ms"] == 2500
    huge = {**NEW_ENGAGEMENT, "e": 30 * 24 * 3600 * 1000}
    assert "engagement_time_ms" not in canonical(settings, huge)


def test_engagement_without_e_or_sd_is_rejected() -> None:
    for bad in ({}, {"e": "soon", "sd": None}, {"e": -5, "sd": -1}, {"e": True}):
        body = {"n": "engagement", "u": PAGE, "d": "shop.example", **bad}
        assert rejection(body) == "missing_field: an engagement event needs an integer 'e' or 'sd'"


def test_e_on_other_events_is_ignored_as_plausible_ignores_it(settings: Settings) -> None:
    assert "engagement_time_ms" not in canonical(settings, {**NEW_PAGEVIEW, "e": 5000})


def test_fields_without_a_canonical_home_are_read_and_dropped(settings: Settings) -> None:
    body = {**NEW_PAGEVIEW, "i": False, "h": 1, "w": 390, "v": 36}
    body["u"] = PAGE + "#/cart"  # hash routing: the fragment is scrubbed as every fragment is
    event = canonical(settings, body)
    assert event["page_url"] == PAGE
    assert not {"i", "h", "w", "v", "sd"} & event.keys()


def test_integer_event_names_are_taken_as_plausible_takes_them() -> None:
    assert parsed({**NEW_PAGEVIEW, "n": 404}).hit.event_name == "404"


# -- what is rejected -------------------------------------------------------------------


def test_unknown_site(settings: Settings) -> None:
    with pytest.raises(Rejected, match=r"unknown_site: site 'other\.example' is not configured"):
        canonical(settings, {**NEW_PAGEVIEW, "d": "other.example"})
    assert rejection({**NEW_PAGEVIEW, "d": "shop.example,blog.example"}).startswith("unknown_site:")


@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"n": None}, "missing_field: n is required"),
        ({"n": ["pageview"]}, "wrong_type: n must be a non-empty string"),
        ({"n": "x" * 65}, "too_long: n is longer than 64 characters"),
        ({"u": None}, "missing_field: u is required"),
        ({"u": 42}, "wrong_type: u must be a non-empty string"),
        ({"d": 7}, "wrong_type: d must be a string"),
        ({"d": "  "}, "empty_field: d must not be blank"),
        ({"r": 1}, "wrong_type: r must be a string or null"),
        ({"p": 3}, "wrong_type: p must be an object or its JSON"),
        ({"p": "[1, 2]"}, "wrong_type: p must be an object or its JSON"),
        ({"p": "{not json"}, "wrong_type: p must be an object or its JSON"),
        (
            {"p": {"transaction_id": ["T"]}},
            "wrong_type: p.transaction_id must be a string or an integer",
        ),
        ({"$": 12}, "wrong_type: $ must be an object or its JSON"),
        ({"$": {"amount": 1}}, "missing_field: $.currency is required with revenue"),
        ({"$": {"currency": "EUR"}}, "missing_field: $.amount is required with revenue"),
        (
            {"$": {"amount": "ten", "currency": "EUR"}},
            "wrong_type: $.amount must be a number or a decimal string",
        ),
        (
            {"$": {"amount": True, "currency": "EUR"}},
            "wrong_type: $.amount must be a number or a decimal string",
        ),
        (
            {"$": {"amount": "NaN", "currency": "EUR"}},
            "value_not_finite: $.amount must be a finite number",
        ),
        (
            {"$": {"amount": -4, "currency": "EUR"}},
            "negative_amount: $.amount must not be negative (money returned is a refund)",
        ),
        (
            {"$": {"amount": 4, "currency": 978}},
            "wrong_type: $.currency must be a string (ISO 4217)",
        ),
        ({"$": {"amount": 4, "currency": "EUR", "tax": 1}}, "unknown_field: unknown field '$.tax'"),
    ],
)
def test_bad_types_get_one_line_reasons(change: dict[str, Any], line: str) -> None:
    assert rejection({**NEW_PAGEVIEW, **change}) == line


def test_currencies_are_checked_by_validation(settings: Settings) -> None:
    with pytest.raises(Rejected, match="bad_currency"):
        canonical(settings, {**NEW_REVENUE, "$": {"amount": 1, "currency": "XYZ"}})


def test_bodies_that_are_not_objects() -> None:
    for body in (b"[]", b'"pageview"', b"{"):
        with pytest.raises(Rejected):
            parse_api_event(body)


def test_a_long_referrer_is_cut_as_plausible_cuts_it(settings: Settings) -> None:
    referrer = "https://www.google.com/" + "a" * 5000
    event = canonical(settings, {**NEW_PAGEVIEW, "r": referrer})
    assert len(event["page_referrer"]) <= 2048


# -- the answers (no broker: a sink that takes everything) ------------------------------


def post_all(
    settings: Settings, sink: KafkaSink, bodies: list[tuple[bytes, str]]
) -> list[httpx.Response]:
    """POST each (body, user agent) to /api/event as text/plain, as the trackers do."""

    async def post() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(settings, sink))
        async with httpx.AsyncClient(transport=transport, base_url="http://collector") as client:
            return [
                await client.post(
                    "/api/event",
                    content=body,
                    headers={"content-type": "text/plain", "user-agent": user_agent},
                )
                for body, user_agent in bodies
            ]

    return asyncio.run(post())


def test_answers_follow_the_body_shape(settings: Settings) -> None:
    sink = RecordingSink(settings)
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    plausible, plain, bot, bad = post_all(
        settings,
        sink,
        [
            (json.dumps(NEW_PAGEVIEW).encode(), CHROME),
            (json.dumps({"name": "page_view", "url": PAGE}).encode(), CHROME),
            (json.dumps(NEW_PAGEVIEW).encode(), googlebot),
            (json.dumps({**NEW_PAGEVIEW, "d": "nope.example"}).encode(), CHROME),
        ],
    )
    # Plausible's answer: 202 "ok"; a deliberately dropped event says so in a header.
    assert (plausible.status_code, plausible.text) == (202, "ok")
    assert plausible.headers["content-type"].startswith("text/plain")
    assert "x-plausible-dropped" not in plausible.headers
    assert (bot.status_code, bot.text, bot.headers["x-plausible-dropped"]) == (202, "ok", "1")
    # Our own body keeps its own answer.
    assert (plain.status_code, plain.json()) == (202, {"accepted": 1})
    assert bad.status_code == 400
    assert bad.json() == {
        "reason": "unknown_site",
        "error": "unknown_site: site 'nope.example' is not configured in `sites`",
    }
    assert [event["event_name"] for event in sink.offered] == ["page_view", "page_view"]
    for response in (plausible, plain, bot, bad):
        assert "set-cookie" not in response.headers
