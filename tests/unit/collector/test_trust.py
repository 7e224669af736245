"""Each collector route sets how its events arrived (`trust`), whatever the client sends:
authenticated only for /mp/collect with the site's api_secret. In process, with a sink
that records what would go to Kafka."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pipeline.config import Settings
from tests.unit.collector.sinks import RecordingSink
from tests.unit.collector.test_ga4_validation import (
    MEASUREMENT_ID,
    PAGE,
    SECRET,
    exchange,
    ga4,
    page_view,
)
from tests.unit.collector.test_ga4_validation import settings as settings  # the fixture
from tests.unit.collector.test_ingestion import CHROME

BROWSER = {"user-agent": CHROME}


def trust_of(settings: Settings, path: str, body: bytes | dict[str, Any] | None) -> list[str]:
    sink = RecordingSink(settings)
    (response,) = exchange(settings, sink, [(path, body)], BROWSER)
    assert response.status_code < 300, response.text
    return [event["trust"] for event in sink.offered]


def test_only_the_measurement_protocol_with_the_sites_api_secret_is_authenticated(
    settings: Settings,
) -> None:
    mp = f"/mp/collect?measurement_id={MEASUREMENT_ID}&api_secret={SECRET}"
    assert trust_of(settings, mp, ga4(page_view())) == ["authenticated"]
    # A site without an api_secret: anyone can send its Measurement Protocol requests.
    blog = ga4({"name": "page_view", "params": {"page_location": "https://blog.example/"}})
    assert trust_of(settings, "/mp/collect?measurement_id=blog.example", blog) == ["anonymous"]
    assert trust_of(settings, "/api/event", {"name": "page_view", "url": PAGE}) == ["anonymous"]
    gtag = urlencode({"v": "2", "tid": MEASUREMENT_ID, "cid": "1.2", "en": "page_view", "dl": PAGE})
    assert trust_of(settings, f"/g/collect?{gtag}", None) == ["anonymous"]


def test_a_client_cannot_claim_to_be_authenticated(settings: Settings) -> None:
    claims = [
        ("/api/event", {"name": "purchase", "url": PAGE, "trust": "authenticated"}),
        ("/api/event", {"n": "purchase", "u": PAGE, "d": "shop.example", "trust": "authenticated"}),
        ("/mp/collect?measurement_id=blog.example",
         ga4({"name": "purchase", "params": {"page_location": "https://blog.example/",
                                             "trust": "authenticated"}})),
        ("/g/collect?" + urlencode({"v": "2", "tid": MEASUREMENT_ID, "cid": "1.2",
                                    "en": "purchase", "dl": PAGE, "ep.trust": "authenticated",
                                    "trust": "authenticated"}), None),
    ]  # fmt: skip
    sink = RecordingSink(settings)
    responses = exchange(settings, sink, claims, BROWSER)
    # Taken as anonymous, or refused: never authenticated.
    assert all(response.status_code < 500 for response in responses)
    assert sink.offered, "no claim was taken at all: the test would prove nothing"
    assert {event["trust"] for event in sink.offered} == {"anonymous"}
