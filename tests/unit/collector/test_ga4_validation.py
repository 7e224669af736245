"""GA4 Measurement Protocol fidelity, in process (no broker: a sink that records offers).

`/debug/mp/collect` answers each of Google's validation codes for a request that earns
it, and never produces; `/mp/collect` runs the same checks and turns them into rejections,
keeping the valid events beside a rejected one. Also: GA4's body limit, the per-site
api_secret, measurement ids, and user properties (accepted, never forwarded).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.collector.app import create_app
from pipeline.collector.ga4 import (
    GA4_MAX_BODY_BYTES,
    RESERVED_EVENT_NAMES,
    ValidationCode,
    looks_personal,
    parse_ga4,
)
from pipeline.collector.kafka_sink import KafkaSink
from pipeline.config import Settings, load_settings
from tests.unit.collector.sinks import RecordingSink

SECRET = "mp-secret-zq9-0451"
MEASUREMENT_ID = "G-SHOP2026"
PAGE = "https://shop.example/p/1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "SESSIONFLOW_DATA_DIR": str(tmp_path),
            "SESSIONFLOW_SITES": '["shop.example", "blog.example"]',
            # shop.example: a GA4 stream with an api_secret; blog.example: none.
            "SESSIONFLOW_GA4": (
                f'{{"shop.example" = {{measurement_id = "{MEASUREMENT_ID}", '
                f'api_secret = "{SECRET}"}}}}'
            ),
        }
    )


def now_micros() -> int:
    return time.time_ns() // 1000


def ga4(*events: Any, **top: Any) -> dict[str, Any]:
    return {"client_id": "1234.5678", **top, "events": list(events)}


def page_view(**params: Any) -> dict[str, Any]:
    return {"name": "page_view", "params": {"page_location": PAGE, **params}}


def exchange(
    settings: Settings,
    sink: KafkaSink,
    requests: Sequence[tuple[str, bytes | dict[str, Any] | None]],
    headers: Mapping[str, str] | None = None,
) -> list[httpx.Response]:
    """(path, body) pairs to one app: a POST per body, a GET where the body is None;
    `headers` on every request (a browser's user agent, say)."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(settings, sink))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://collector", headers=headers
        ) as client:
            responses = []
            for path, body in requests:
                if body is None:
                    responses.append(await client.get(path))
                    continue
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                json_type = {"content-type": "application/json"}
                responses.append(await client.post(path, content=content, headers=json_type))
            return responses

    return asyncio.run(send())


def post(
    settings: Settings, sink: KafkaSink, path: str, bodies: list[bytes | dict[str, Any]]
) -> list[httpx.Response]:
    return exchange(settings, sink, [(path, body) for body in bodies])


DEBUG = f"/debug/mp/collect?measurement_id={MEASUREMENT_ID}&api_secret={SECRET}"
COLLECT = f"/mp/collect?measurement_id={MEASUREMENT_ID}&api_secret={SECRET}"


def many_params(count: int) -> dict[str, Any]:
    return {f"p{i}": i for i in range(count)}


# (case, body, Google's code, the fieldPath it is reported at)
TABLE: list[tuple[str, bytes | dict[str, Any], ValidationCode, str]] = [
    # VALUE_INVALID
    ("client_id a number", {"client_id": 5, "events": [page_view()]}, ValidationCode.VALUE_INVALID, "client_id"),
    ("body not json", b"{client_id:", ValidationCode.VALUE_INVALID, "body"),
    ("params a list", ga4({"name": "x", "params": [1]}), ValidationCode.VALUE_INVALID, "events[0].params"),
    ("param value an object", ga4({"name": "x", "params": {"colour": {"r": 1}}}), ValidationCode.VALUE_INVALID, "events[0].params.colour"),
    ("items not a list", ga4({"name": "purchase", "params": {"items": "shoe"}}), ValidationCode.VALUE_INVALID, "events[0].params.items"),
    ("user_properties a list", ga4(page_view(), user_properties=[1]), ValidationCode.VALUE_INVALID, "user_properties"),
    ("currency lower case", ga4({"name": "purchase", "params": {"value": 5, "currency": "usd"}}), ValidationCode.VALUE_INVALID, "events[0]"),
    ("timestamp 80 h old", ga4(page_view(), timestamp_micros=now_micros() - 80 * 3600 * 10**6), ValidationCode.VALUE_INVALID, "events[0]"),
    # VALUE_REQUIRED
    ("no client_id", {"events": [page_view()]}, ValidationCode.VALUE_REQUIRED, "client_id"),
    ("no events", {"client_id": "1.2"}, ValidationCode.VALUE_REQUIRED, "events"),
    ("empty events", ga4(), ValidationCode.VALUE_REQUIRED, "events"),
    ("event without a name", ga4({"params": {}}), ValidationCode.VALUE_REQUIRED, "events[0].name"),
    ("user property without value", ga4(page_view(), user_properties={"tier": {}}), ValidationCode.VALUE_REQUIRED, "user_properties.tier.value"),
    # NAME_INVALID
    ("event name starts with _", ga4({"name": "_badEventName"}), ValidationCode.NAME_INVALID, "events[0].name"),
    ("event name starts with a digit", ga4({"name": "1x"}), ValidationCode.NAME_INVALID, "events[0].name"),
    ("event name of 41 characters", ga4({"name": "e" * 41}), ValidationCode.NAME_INVALID, "events[0].name"),
    ("param name with a dash", ga4({"name": "x", "params": {"bad-name": 1}}), ValidationCode.NAME_INVALID, 'events[0].params."bad-name"'),
    ("item param name with a space", ga4({"name": "purchase", "params": {"items": [{"item id": "a"}]}}), ValidationCode.NAME_INVALID, 'events[0].params.items[0]."item id"'),
    ("user property name of 25 characters", ga4(page_view(), user_properties={"t" * 25: {"value": "x"}}), ValidationCode.NAME_INVALID, "user_properties." + "t" * 25),
    # NAME_RESERVED
    ("reserved event name", ga4({"name": "session_start"}), ValidationCode.NAME_RESERVED, "events[0].name"),
    ("event name with ga_", ga4({"name": "ga_custom"}), ValidationCode.NAME_RESERVED, "events[0].name"),
    ("param name with firebase_", ga4({"name": "x", "params": {"firebase_screen": "a"}}), ValidationCode.NAME_RESERVED, "events[0].params.firebase_screen"),
    ("param name with google_", ga4({"name": "x", "params": {"google_thing": "a"}}), ValidationCode.NAME_RESERVED, "events[0].params.google_thing"),
    ("reserved user property", ga4(page_view(), user_properties={"first_open_time": {"value": 1}}), ValidationCode.NAME_RESERVED, "user_properties.first_open_time"),
    # VALUE_OUT_OF_BOUNDS
    ("param value of 101 characters", ga4({"name": "x", "params": {"note": "n" * 101}}), ValidationCode.VALUE_OUT_OF_BOUNDS, "events[0].params.note"),
    ("page_location of 1001 characters", ga4(page_view(page_location=PAGE + "?" + "q" * 1000)), ValidationCode.VALUE_OUT_OF_BOUNDS, "events[0].params.page_location"),
    ("item param value of 101 characters", ga4({"name": "purchase", "params": {"items": [{"item_name": "i" * 101}]}}), ValidationCode.VALUE_OUT_OF_BOUNDS, "events[0].params.items[0].item_name"),
    ("user property value of 37 characters", ga4(page_view(), user_properties={"tier": {"value": "t" * 37}}), ValidationCode.VALUE_OUT_OF_BOUNDS, "user_properties.tier.value"),
    ("body over 130 KiB", ga4({"name": "x", "params": {"pad": " " * GA4_MAX_BODY_BYTES}}), ValidationCode.VALUE_OUT_OF_BOUNDS, "body"),
    # EXCEEDED_MAX_ENTITIES
    ("26 events", ga4(*[page_view()] * 26), ValidationCode.EXCEEDED_MAX_ENTITIES, "events"),
    ("26 params", ga4({"name": "x", "params": many_params(26)}), ValidationCode.EXCEEDED_MAX_ENTITIES, "events[0].params"),
    ("26 user properties", ga4(page_view(), user_properties={f"up{i}": {"value": i} for i in range(26)}), ValidationCode.EXCEEDED_MAX_ENTITIES, "user_properties"),
    ("11 custom item params", ga4({"name": "purchase", "params": {"items": [{"item_id": "a", **many_params(11)}]}}), ValidationCode.EXCEEDED_MAX_ENTITIES, "events[0].params.items[0]"),
    # NAME_DUPLICATED (JSON objects with a name given twice)
    ("param given twice", b'{"client_id": "1.2", "events": [{"name": "x", "params": {"a": 1, "a": 2}}]}', ValidationCode.NAME_DUPLICATED, "events[0].params.a"),
    ("user property given twice", b'{"client_id": "1.2", "user_properties": {"tier": {"value": "a"}, "tier": {"value": "b"}}, "events": [{"name": "x"}]}', ValidationCode.NAME_DUPLICATED, "user_properties.tier"),
    ("client_id given twice", b'{"client_id": "1.2", "client_id": "3.4", "events": [{"name": "x"}]}', ValidationCode.NAME_DUPLICATED, "client_id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code", "field_path"), [case[1:] for case in TABLE], ids=[case[0] for case in TABLE]
)
def test_each_validation_code_on_the_validation_server(
    settings: Settings, body: bytes | dict[str, Any], code: ValidationCode, field_path: str
) -> None:
    sink = RecordingSink(settings)
    (response,) = post(settings, sink, DEBUG, [body])
    assert response.status_code == 200, response.text
    messages = response.json()["validationMessages"]
    assert (field_path, code) in [(m["fieldPath"], m["validationCode"]) for m in messages]
    for message in messages:
        assert set(message) == {"fieldPath", "description", "validationCode"}
        assert message["description"] and "\n" not in message["description"]
    assert sink.offered == []  # the validation server never produces


def test_the_table_covers_every_code() -> None:
    assert {case[2] for case in TABLE} == set(ValidationCode)


def test_a_valid_request_gets_no_messages_and_produces_nothing(settings: Settings) -> None:
    sink = RecordingSink(settings)
    purchase = {
        "name": "purchase",
        "params": {
            "value": 25.0, "currency": "EUR", "transaction_id": "T-1001",
            "items": [{"item_id": "sku-1", "item_name": "Shoe", "price": 25.0, "size": "42"}],
            "session_id": 1731000000, "engagement_time_msec": 120,
        },
    }  # fmt: skip
    body = ga4(
        page_view(page_title="A page", session_id="1731000000"),
        purchase,
        {"name": "screen_view"},  # reserved for app streams only
        user_id="customer-42",
        timestamp_micros=now_micros() - 3_600_000_000,
        user_properties={"customer_tier": {"value": "gold"}},
    )
    for path in (DEBUG, "/debug/mp/collect?measurement_id=blog.example"):
        (response,) = post(settings, sink, path, [body])
        assert (response.status_code, response.json()) == (200, {"validationMessages": []})
    assert sink.offered == []


def test_collect_rejects_with_the_codes_and_keeps_the_valid_events(settings: Settings) -> None:
    sink = RecordingSink(settings)
    body = ga4(
        page_view(),
        {"name": "session_start"},
        {"name": "sign_up", "params": {"_private": 1}},
        {"name": "add_to_cart", "params": {"value": 3.5, "currency": "USD"}},
    )
    (response,) = post(settings, sink, COLLECT, [body])
    assert response.status_code == 400
    answer = response.json()
    assert answer["accepted"] == 2
    rejected = [(r["index"], r["reason"], r["validation_code"]) for r in answer["rejected"]]
    assert rejected == [(1, "reserved_name", "NAME_RESERVED"), (2, "bad_name", "NAME_INVALID")]
    for entry in answer["rejected"]:
        assert entry["error"].startswith(entry["reason"] + ": ")
        assert entry["error"].endswith(f"({entry['validation_code']})")
        assert "\n" not in entry["error"]
    assert sorted(event["event_name"] for event in sink.offered) == ["add_to_cart", "page_view"]
    # The validation server finds the same, and produces nothing.
    (debug,) = post(settings, sink, DEBUG, [body])
    codes = [(m["fieldPath"], m["validationCode"]) for m in debug.json()["validationMessages"]]
    assert codes == [
        ("events[1].name", "NAME_RESERVED"), ("events[2].params._private", "NAME_INVALID"),
    ]  # fmt: skip
    assert len(sink.offered) == 2


def test_every_reserved_event_name_is_rejected_on_collect(settings: Settings) -> None:
    sink = RecordingSink(settings)
    names = sorted(RESERVED_EVENT_NAMES)
    bodies: list[bytes | dict[str, Any]] = [
        ga4(*[{"name": name} for name in names[i : i + 25]]) for i in range(0, len(names), 25)
    ]
    for response in post(settings, sink, COLLECT, bodies):
        assert response.status_code == 400
        assert {r["validation_code"] for r in response.json()["rejected"]} == {"NAME_RESERVED"}
    assert sink.offered == []
    assert {"page_view", "screen_view", "purchase"}.isdisjoint(RESERVED_EVENT_NAMES)


def legal_73_kb_request() -> bytes:
    """25 events of 25 params each, 23 of them 100-character strings: about 73 kB, all
    within Google's limits (and past the general 64 KiB collector.max_body_bytes)."""
    events = [
        {
            "name": f"custom_event_{n}",
            "params": {f"custom_param_{p:02}": "v" * 100 for p in range(23)}
            | {"session_id": 1731000000, "engagement_time_msec": 10},
        }
        for n in range(25)
    ]
    body = json.dumps({"client_id": "1234.5678", "events": events}).encode()
    assert 72_000 < len(body) < 74_000
    return body


def test_a_legal_73_kb_request_is_taken_past_the_general_body_limit(settings: Settings) -> None:
    assert settings.collector.max_body_bytes == 64 * 1024
    sink = RecordingSink(settings)
    body = legal_73_kb_request()
    collected, debug = exchange(settings, sink, [(COLLECT, body), (DEBUG, body)])
    assert collected.status_code == 204, collected.text
    assert debug.json() == {"validationMessages": []}
    assert len(sink.offered) == 25
    # Past GA4's limit: 413 on /mp/collect.
    too_large = json.dumps(ga4(page_view())).encode() + b" " * GA4_MAX_BODY_BYTES
    (response,) = post(settings, sink, COLLECT, [too_large])
    assert (response.status_code, response.json()["reason"]) == (413, "body_too_large")
    # Other routes keep collector.max_body_bytes.
    (plain,) = post(settings, sink, "/api/event", [b" " * (65 * 1024)])
    assert plain.status_code == 413
    assert len(sink.offered) == 25


def test_api_secret_when_the_site_has_one(settings: Settings) -> None:
    sink = RecordingSink(settings)
    body = ga4(page_view())
    base = f"/mp/collect?measurement_id={MEASUREMENT_ID}"
    missing, empty, wrong, right, by_site_id = (
        post(settings, sink, path, [body])[0]
        for path in (
            base,
            base + "&api_secret=",
            base + "&api_secret=not-the-secret",
            base + f"&api_secret={SECRET}",
            f"/mp/collect?measurement_id=shop.example&api_secret={SECRET}",
        )
    )
    assert (missing.status_code, missing.json()["reason"]) == (401, "missing_api_secret")
    assert (empty.status_code, empty.json()["reason"]) == (401, "missing_api_secret")
    assert (wrong.status_code, wrong.json()["reason"]) == (403, "bad_api_secret")
    assert (right.status_code, by_site_id.status_code) == (204, 204)
    for response in (missing, empty, wrong):
        assert SECRET not in response.text and "not-the-secret" not in response.text
        assert "\n" not in response.json()["error"]
    # The validation server checks it too (it produces nothing, but answers nobody else).
    (debug,) = post(settings, sink, f"/debug/mp/collect?measurement_id={MEASUREMENT_ID}", [body])
    assert debug.status_code == 401
    assert [event["site_id"] for event in sink.offered] == ["shop.example", "shop.example"]
    # A site without an api_secret takes requests with or without one.
    for path in ("/mp/collect?measurement_id=blog.example",
                 "/mp/collect?measurement_id=blog.example&api_secret=anything"):  # fmt: skip
        assert post(settings, sink, path, [body])[0].status_code == 204


def test_measurement_ids_name_their_sites(settings: Settings) -> None:
    sink = RecordingSink(settings)
    body = ga4(page_view())
    unknown, missing = (
        post(settings, sink, path, [body])[0]
        for path in ("/mp/collect?measurement_id=G-NOTOURS1", "/mp/collect")
    )
    assert (unknown.status_code, unknown.json()["reason"]) == (400, "unknown_site")
    assert (missing.status_code, missing.json()["reason"]) == (400, "missing_field")
    (debug,) = post(settings, sink, "/debug/mp/collect?measurement_id=G-NOTOURS1", [body])
    assert [(m["fieldPath"], m["validationCode"]) for m in debug.json()["validationMessages"]] == [
        ("measurement_id", "VALUE_INVALID")
    ]
    assert sink.offered == []


def test_user_properties_are_accepted_and_never_forwarded(settings: Settings) -> None:
    sink = RecordingSink(settings)
    properties = {
        "customer_tier": {"value": "gold-zq9"},
        "email": {"value": "jane.zq9@example.com"},
        "favourite": {"value": "jane.zq9@example.com"},  # an e-mail under any name
        "first_name": {"value": "Janezq9"},
        "phone_number": {"value": "+49 30 1234567"},
        "home_address": {"value": "Zq9 Street 1"},
    }
    # A personal one is dropped before any check: this one's 99 characters go unremarked.
    unchecked = {"email": {"value": "x" * 99}}
    response, health, debug = exchange(
        settings,
        sink,
        [
            (COLLECT, ga4(page_view(), user_properties=properties)),
            ("/health", None),
            (DEBUG, ga4(page_view(), user_properties=unchecked)),
        ],
    )
    assert response.status_code == 204, response.text
    (event,) = sink.offered
    text = json.dumps(event)
    for needle in ("gold-zq9", "customer_tier", "jane.zq9", "Janezq9", "1234567", "Zq9 Street"):
        assert needle not in text
    assert health.json()["outcomes"]["dropped:personal_user_property"] == 5
    assert debug.json() == {"validationMessages": []}


@pytest.mark.parametrize(
    ("name", "value", "personal"),
    [
        ("email", "x", True), ("user_email", "x", True), ("mail_opt_in", True, True),
        ("phone", "1", True), ("tel", "1", True), ("mobile", "1", True),
        ("name", "x", True), ("last_name", "x", True), ("username", "x", True),
        ("address", "x", True), ("zip", "1", True), ("dob", "x", True), ("ip", "x", True),
        ("tier", "jane@example.com", True), ("tier", {"value": "jane@example.com"}, True),
        ("customer_tier", "gold", False), ("plan", "pro", False), ("zipper_size", "m", False),
        ("tier", {"value": "react@18.2.0"}, False), ("lifetime_value", 1234567, False),
    ],
)  # fmt: skip
def test_the_personal_data_rule(name: str, value: object, personal: bool) -> None:
    assert looks_personal(name, value) is personal


def test_parse_ga4_still_gives_a_hit_or_a_rejection_per_event() -> None:
    body = ga4(page_view(), {"name": "first_visit"}, {"name": "x", "params": {"v": "n" * 101}})
    hit, reserved, too_long = parse_ga4("shop.example", json.dumps(body).encode())
    assert getattr(hit, "event_name", None) == "page_view"
    assert getattr(reserved, "reason", None) == "reserved_name"
    assert getattr(too_long, "reason", None) == "too_long"
