"""A corpus of malformed payloads: each kind gets a 4xx with its own reason, nothing crashes,
and the collector keeps serving valid events afterwards."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.conftest import RunningCollector, events_of, read_topic

URL = "https://shop.example/p"
GOOD = {"name": "page_view", "url": URL}
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def ga4(*events: object, **top: object) -> dict[str, object]:
    return {"client_id": "c.1", "events": list(events), **top}


def micros_ago(hours: float) -> int:
    return int((time.time() - hours * 3600) * 1_000_000)


# (name, path, body, content type, status, reason)
CORPUS: list[tuple[str, str, object, str, int, str]] = [
    ("invalid json", "/api/event", b"{name:", "text/plain", 400, "bad_json"),
    ("empty body", "/api/event", b"", "text/plain", 400, "bad_json"),
    ("invalid utf-8", "/api/event", b'{"name": "\xff\xfe"}', "text/plain", 400, "bad_json"),
    ("json array", "/api/event", [GOOD], "application/json", 400, "not_an_object"),
    ("json string", "/api/event", "hello", "application/json", 400, "not_an_object"),
    ("missing name", "/api/event", {"url": URL}, "text/plain", 400, "missing_field"),
    ("missing url", "/api/event", {"name": "x"}, "text/plain", 400, "missing_field"),
    ("name not string", "/api/event", {"name": 7, "url": URL}, "text/plain", 400, "wrong_type"),
    ("empty name", "/api/event", {"name": " ", "url": URL}, "text/plain", 400, "empty_field"),
    ("name too long", "/api/event", {"name": "n" * 65, "url": URL}, "text/plain", 400, "too_long"),
    (
        "url too long",
        "/api/event",
        {"name": "x", "url": URL + "a" * 2048},
        "text/plain",
        400,
        "too_long",
    ),
    ("unknown field", "/api/event", {**GOOD, "colour": "red"}, "text/plain", 400, "unknown_field"),
    (
        "javascript url",
        "/api/event",
        {"name": "x", "url": "javascript:alert(1)"},
        "text/plain",
        400,
        "bad_url",
    ),
    (
        "relative url",
        "/api/event",
        {"name": "x", "url": "/p", "site_id": "shop.example"},
        "text/plain",
        400,
        "bad_url",
    ),
    (
        "unknown site",
        "/api/event",
        {"name": "x", "url": "https://other.example/"},
        "text/plain",
        400,
        "unknown_site",
    ),
    ("site not string", "/api/event", {**GOOD, "site_id": 5}, "text/plain", 400, "wrong_type"),
    (
        "referrer not string",
        "/api/event",
        {**GOOD, "referrer": ["a"]},
        "text/plain",
        400,
        "wrong_type",
    ),
    ("value is text", "/api/event", {**GOOD, "value": "abc"}, "text/plain", 400, "wrong_type"),
    (
        "value NaN",
        "/api/event",
        b'{"name": "x", "url": "https://shop.example/", "value": NaN}',
        "text/plain",
        400,
        "value_not_finite",
    ),
    (
        "value Infinity",
        "/api/event",
        b'{"name": "x", "url": "https://shop.example/", "value": -Infinity}',
        "text/plain",
        400,
        "value_not_finite",
    ),
    ("value is bool", "/api/event", {**GOOD, "value": True}, "text/plain", 400, "wrong_type"),
    (
        "currency lower case",
        "/api/event",
        {**GOOD, "value": 1, "currency": "usd"},
        "text/plain",
        400,
        "bad_currency",
    ),
    (
        "currency not iso",
        "/api/event",
        {**GOOD, "value": 1, "currency": "XYZ"},
        "text/plain",
        400,
        "bad_currency",
    ),
    (
        "multipart body",
        "/api/event",
        b"--x--",
        "multipart/form-data; boundary=x",
        415,
        "unsupported_media_type",
    ),
    ("body too large", "/api/event", b" " * (70 * 1024), "text/plain", 413, "body_too_large"),
    (
        "ga4 missing measurement id",
        "/mp/collect",
        ga4({"name": "x"}),
        "application/json",
        400,
        "missing_field",
    ),
    (
        "ga4 unknown site",
        "/mp/collect?measurement_id=other.example",
        ga4({"name": "x"}),
        "application/json",
        400,
        "unknown_site",
    ),
    (
        "ga4 missing client id",
        "/mp/collect?measurement_id=shop.example",
        {"events": [{"name": "x"}]},
        "application/json",
        400,
        "missing_field",
    ),
    (
        "ga4 client id number",
        "/mp/collect?measurement_id=shop.example",
        {"client_id": 5, "events": [{"name": "x"}]},
        "application/json",
        400,
        "wrong_type",
    ),
    (
        "ga4 user id number",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x"}, user_id=5),
        "application/json",
        400,
        "wrong_type",
    ),
    (
        "ga4 missing events",
        "/mp/collect?measurement_id=shop.example",
        {"client_id": "c"},
        "application/json",
        400,
        "missing_field",
    ),
    (
        "ga4 events not list",
        "/mp/collect?measurement_id=shop.example",
        {"client_id": "c", "events": {}},
        "application/json",
        400,
        "wrong_type",
    ),
    (
        "ga4 no events",
        "/mp/collect?measurement_id=shop.example",
        ga4(),
        "application/json",
        400,
        "no_events",
    ),
    (
        "ga4 26 events",
        "/mp/collect?measurement_id=shop.example",
        ga4(*[{"name": "x"}] * 26),
        "application/json",
        400,
        "too_many_events",
    ),
    (
        "ga4 event not object",
        "/mp/collect?measurement_id=shop.example",
        ga4("page_view"),
        "application/json",
        400,
        "not_an_object",
    ),
    (
        "ga4 bad event name",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "1x"}),
        "application/json",
        400,
        "bad_event_name",
    ),
    (
        "ga4 params not object",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x", "params": [1]}),
        "application/json",
        400,
        "not_an_object",
    ),
    (
        "ga4 negative timestamp",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x"}, timestamp_micros=-5),
        "application/json",
        400,
        "bad_timestamp",
    ),
    (
        "ga4 timestamp too old",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x"}, timestamp_micros=micros_ago(80)),
        "application/json",
        400,
        "timestamp_too_old",
    ),
    (
        "ga4 timestamp in future",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x"}, timestamp_micros=micros_ago(-1)),
        "application/json",
        400,
        "timestamp_in_future",
    ),
    (
        "ga4 session id object",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x", "params": {"session_id": {}}}),
        "application/json",
        400,
        "wrong_type",
    ),
    (
        "ga4 negative engagement",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x", "params": {"engagement_time_msec": -1}}),
        "application/json",
        400,
        "negative_number",
    ),
    (
        "ga4 transaction id number",
        "/mp/collect?measurement_id=shop.example",
        ga4({"name": "x", "params": {"transaction_id": 5}}),
        "application/json",
        400,
        "wrong_type",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "reason"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_each_malformed_kind_gets_its_reason(
    module_collector: RunningCollector,
    path: str,
    body: object,
    content_type: str,
    status: int,
    reason: str,
) -> None:
    collector = module_collector
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    response = httpx.post(
        f"{collector.url}{path}",
        content=content,
        headers={"Content-Type": content_type, "User-Agent": CHROME},
        timeout=10,
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["reason"] == reason
    assert payload["error"].startswith(f"{reason}: ")
    assert "\n" not in payload["error"]
    # And the collector still takes a valid event right after.
    ok = httpx.post(f"{collector.url}/api/event", json=GOOD, headers={"User-Agent": CHROME})
    assert ok.status_code == 202
    assert collector.process.poll() is None


def test_corpus_covers_at_least_thirty_kinds() -> None:
    assert len({case[-1] for case in CORPUS}) >= 18  # distinct reason codes
    assert len(CORPUS) >= 30


def test_valid_events_land_after_a_barrage_of_bad_ones(collector: RunningCollector) -> None:
    for _, path, body, content_type, _, _ in CORPUS:
        content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
        httpx.post(
            f"{collector.url}{path}", content=content, headers={"Content-Type": content_type}
        )
    assert (
        httpx.post(
            f"{collector.url}/api/event", json=GOOD, headers={"User-Agent": CHROME}
        ).status_code
        == 202
    )
    events = events_of(read_topic(collector.bootstrap, collector.topic, 1))
    assert [e["page_url"] for e in events] == [URL]
