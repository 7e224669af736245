"""A real GA4 Measurement Protocol client, ga4mp (PyPI 2.0.4), against a running collector
on the real broker: what it sends must come out of the Kafka topic as canonical events.

ga4mp posts to `self._base_domain` (/mp/collect) or, with `validation_hit=True`,
`self._validation_domain` (/debug/mp/collect), both set in `BaseGa4mp.__init__`: a subclass
points them at the collector. Everything else (the query string with measurement_id and
api_secret, the JSON body, batches of 25, session_id and engagement_time_msec added to each
event, user properties, `date=` back-dating) is ga4mp's own.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ga4mp import GtagMP

from pipeline.events.timestamps import parse_event_ts
from tests.integration.conftest import (
    RunningCollector,
    events_of,
    read_topic,
    running_collector,
)

MEASUREMENT_ID = "G-ZQ9SHOP26"
API_SECRET = "ga4mp-secret-Zq9x7Qw2"
WRONG_SECRET = "wrong-secret-Zq9k4Lm8"
CLIENT_ID = "1958273645.1731000000"
USER_ID = "customer-zq9-4242"
EMAIL = "jane.zq9.ga4mp@example.com"
LANDING = "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=nov"


class CollectorGtagMP(GtagMP):  # type: ignore[misc]  # ga4mp ships no type hints
    """ga4mp's gtag client, posting to our collector instead of Google's."""

    def __init__(self, collector_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._base_domain = f"{collector_url}/mp/collect"
        self._validation_domain = f"{collector_url}/debug/mp/collect"


@pytest.fixture
def ga4_collector(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningCollector]:
    """A collector whose shop.example is GA4 stream MEASUREMENT_ID, with an api_secret."""
    stream = (
        f'{{"shop.example" = {{measurement_id = "{MEASUREMENT_ID}", api_secret = "{API_SECRET}"}}}}'
    )
    with running_collector(kafka_bootstrap, tmp_path, SESSIONFLOW_GA4=stream) as running:
        yield running


def client_for(collector: RunningCollector, api_secret: str = API_SECRET) -> Any:
    return CollectorGtagMP(
        collector.url, api_secret=api_secret, measurement_id=MEASUREMENT_ID, client_id=CLIENT_ID
    )


def health(collector: RunningCollector) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{collector.url}/health", timeout=5).json()
    return answer


def test_ga4mp_page_views_purchase_batches_and_validation(ga4_collector: RunningCollector) -> None:
    collector = ga4_collector
    ga = client_for(collector)
    ga.store.set_user_property("user_id", USER_ID)  # ga4mp sends it as the top-level user_id
    ga.store.set_user_property("customer_tier", "gold-zq9")  # accepted, never stored
    ga.store.set_user_property("email", EMAIL)  # personal: dropped unseen

    ga.send([{"name": "page_view", "params": {"page_location": LANDING, "page_title": "Sale"}}])
    two_hours_ago = datetime.now() - timedelta(hours=2)  # ga4mp reads a naive local time
    ga.send(
        [{"name": "page_view", "params": {"page_location": "https://shop.example/cart"}}],
        date=two_hours_ago,
    )
    purchase = ga.create_new_event("purchase")
    purchase.set_event_param("value", 25.0)
    purchase.set_event_param("currency", "EUR")
    purchase.set_event_param("transaction_id", "T-zq9-1001")
    purchase.add_item_to_event(purchase.create_new_item(item_id="sku-1", item_name="Shoe"))
    ga.send([purchase])
    # 30 events: ga4mp posts them as two requests, of 25 and 5.
    ga.send([{"name": "list_scrolled", "params": {"position": n}} for n in range(30)])
    # The validation server: answered, nothing produced.
    ga.send([{"name": "validation_probe", "params": {}}], validation_hit=True)

    messages = read_topic(collector.bootstrap, collector.topic, 33)
    events = events_of(messages)
    assert len(events) == 33, [e["event_name"] for e in events]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_name.setdefault(str(event["event_name"]), []).append(event)
    assert {name: len(group) for name, group in by_name.items()} == {
        "page_view": 2, "purchase": 1, "list_scrolled": 30,
    }  # fmt: skip

    # One client session, one id: a keyed hash of ga4mp's session_id, never the raw value.
    session_id = str(ga.store.get_session_parameter("session_id"))
    (stored_session,) = {str(event["session_id"]) for event in events}
    assert len(stored_session) == 32 and stored_session != session_id
    for event in events:
        assert event["site_id"] == "shop.example"
        assert event["visitor_scope"] == "client"
        assert isinstance(event["engagement_time_ms"], int) and event["engagement_time_ms"] >= 0
    assert len({e["visitor_id"] for e in events}) == 1
    assert len({e["user_id"] for e in events}) == 1
    assert events[0]["visitor_id"] != CLIENT_ID and events[0]["user_id"] not in (None, USER_ID)

    cart, landing = sorted(by_name["page_view"], key=lambda e: str(e["page_url"]))
    assert (cart["page_url"], landing["page_url"]) == (
        "https://shop.example/cart",
        "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
    )
    assert (landing["utm_source"], landing["utm_medium"]) == ("newsletter", "email")
    # timestamp_micros (ga4mp's `date=`) is honoured: the event is dated two hours back.
    dated = parse_event_ts(cart["event_ts"]) / 1e6
    assert abs(dated - two_hours_ago.timestamp()) < 5
    assert abs(parse_event_ts(landing["event_ts"]) / 1e6 - time.time()) < 300

    (bought,) = by_name["purchase"]
    assert (bought["value"], bought["currency"], bought["transaction_id"]) == (
        25.0, "EUR", "T-zq9-1001",
    )  # fmt: skip

    outcomes = health(collector)["outcomes"]
    assert outcomes["validated"] == 1
    assert outcomes["accepted"] == 33
    assert outcomes["dropped:personal_user_property"] == 5  # one per /mp/collect request
    text = b"\n".join(messages).decode()
    for secret in (API_SECRET, CLIENT_ID, USER_ID, EMAIL, "gold-zq9", "customer_tier"):
        assert secret not in text


def test_a_legal_73_kb_request_from_ga4mp_is_taken(ga4_collector: RunningCollector) -> None:
    collector = ga4_collector
    # 25 events of 23 params of 100 characters, plus ga4mp's session_id and
    # engagement_time_msec: 25 params each, Google's limits, past the general 64 KiB.
    events = [
        {"name": f"custom_event_{n}",
         "params": {f"custom_param_{p:02}": "v" * 100 for p in range(23)}}
        for n in range(25)
    ]  # fmt: skip
    client_for(collector).send(events)  # one request; raises on anything but 2xx
    # ga4mp added its params to `events` in place and posted json.dumps of exactly this:
    sent = json.dumps({"client_id": CLIENT_ID, "events": events}).encode()
    assert 72_000 < len(sent) < 74_000 and len(sent) > 64 * 1024
    assert all(len(event["params"]) == 25 for event in events)
    assert len(read_topic(collector.bootstrap, collector.topic, 25)) == 25


def test_api_secret_is_required_and_never_leaks(ga4_collector: RunningCollector) -> None:
    collector = ga4_collector
    page = [{"name": "page_view", "params": {"page_location": "https://shop.example/"}}]
    answers = {}
    for name, secret, validation_hit in (
        ("wrong", WRONG_SECRET, False),
        ("missing", "", False),
        ("wrong, validation server", WRONG_SECRET, True),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            client_for(collector, secret).send(list(page), validation_hit=validation_hit)
        answers[name] = (refused.value.code, json.loads(refused.value.read())["reason"])
    assert answers == {
        "wrong": (403, "bad_api_secret"),
        "missing": (401, "missing_api_secret"),
        "wrong, validation server": (403, "bad_api_secret"),
    }
    client_for(collector).send(list(page))  # the right secret: taken
    # The site id names the site as well as its measurement id does.
    by_site = httpx.post(
        f"{collector.url}/mp/collect?measurement_id=shop.example&api_secret={API_SECRET}",
        json={"client_id": CLIENT_ID, "events": page},
        timeout=10,
    )
    assert by_site.status_code == 204, by_site.text

    messages = read_topic(collector.bootstrap, collector.topic, 2)
    assert len(messages) == 2
    collector.stop()  # flush its logs
    log_text = collector.log_text()
    assert "DEBUG" in log_text  # the scan covers the most verbose log level
    for where, text in {"kafka": b"\n".join(messages).decode(), "log": log_text}.items():
        for secret in (API_SECRET, WRONG_SECRET, CLIENT_ID):
            assert secret not in text, f"{secret!r} leaked into {where}"
