"""GA4 MP sends no event ids: a dated hit's id is derived from the hit itself, so that a
client's retry de-duplicates, while two identical events of one request stay two."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline.collector.enrichment import Ingestor, RequestContext, canonical_params
from pipeline.collector.ga4 import parse_ga4
from pipeline.collector.hits import Hit
from pipeline.config import Settings, load_settings
from pipeline.events.reasons import Rejected
from pipeline.events.timestamps import parse_event_ts

NOW = parse_event_ts("2026-11-20T12:00:00Z")
CLIENT_ID = "1234567.7654321"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={"SESSIONFLOW_DATA_DIR": str(tmp_path), "SESSIONFLOW_SITES": '["shop.example"]'}
    )


def request_body(*events: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"client_id": CLIENT_ID, "timestamp_micros": NOW - 5_000_000, **fields,
            "events": list(events)}  # fmt: skip


PAGE_VIEW = {"name": "page_view", "params": {"page_location": "https://shop.example/a"}}
ADD_TO_CART = {"name": "add_to_cart", "params": {"value": 3.5, "currency": "USD"}}


def event_ids(
    ingestor: Ingestor, body: dict[str, Any], received: int = NOW, site: str = "shop.example"
) -> list[str]:
    """The event ids the collector gives the events of one request received at `received`."""
    context = RequestContext("198.51.100.9", "python-requests/2.32", {}, received)
    ids = []
    for hit in parse_ga4(site, json.dumps(body).encode()):
        assert isinstance(hit, Hit)
        ids.append(str(ingestor.to_canonical(hit, context)["event_id"]))
    return ids


def test_a_retried_request_gets_the_same_ids(settings: Settings) -> None:
    body = request_body(PAGE_VIEW, ADD_TO_CART)
    first = event_ids(Ingestor(settings), body)
    # Retried a minute later, to a restarted collector (same secret file): the same ids.
    assert event_ids(Ingestor(settings), body, received=NOW + 60_000_000) == first
    assert len(set(first)) == 2


def test_key_order_of_the_params_does_not_matter(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    params = {"value": 3.5, "currency": "USD", "items": [{"b": 1, "a": 2}]}
    reordered = {"items": [{"a": 2, "b": 1}], "currency": "USD", "value": 3.5}
    assert event_ids(ingestor, request_body({"name": "add_to_cart", "params": params})) == (
        event_ids(ingestor, request_body({"name": "add_to_cart", "params": reordered}))
    )


def test_two_identical_events_in_one_request_stay_two(settings: Settings) -> None:
    ids = event_ids(Ingestor(settings), request_body(PAGE_VIEW, PAGE_VIEW))
    assert len(set(ids)) == 2


def test_what_a_retry_repeats_decides_the_id(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    (base,) = event_ids(ingestor, request_body(PAGE_VIEW))
    changed = [
        request_body(PAGE_VIEW, timestamp_micros=NOW - 4_000_000),
        request_body({**PAGE_VIEW, "params": {"page_location": "https://shop.example/b"}}),
        request_body({**PAGE_VIEW, "name": "screen_view"}),
        request_body(PAGE_VIEW, client_id="7654321.1234567"),
        request_body(PAGE_VIEW, user_id="customer-1"),
    ]
    ids = [event_ids(ingestor, body)[0] for body in changed]
    assert len({base, *ids}) == len(changed) + 1


def test_the_event_timestamp_wins_over_the_request_timestamp(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    dated = {**PAGE_VIEW, "timestamp_micros": NOW - 2_000_000}
    assert event_ids(ingestor, request_body(dated)) == event_ids(
        ingestor, request_body(dated, timestamp_micros=NOW - 9_000_000)
    )
    assert event_ids(ingestor, request_body(dated)) != event_ids(ingestor, request_body(PAGE_VIEW))


def test_without_timestamp_micros_every_request_gets_new_ids(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    body = {"client_id": CLIENT_ID, "events": [PAGE_VIEW, ADD_TO_CART]}
    first, second = event_ids(ingestor, body), event_ids(ingestor, body)
    assert len({*first, *second}) == 4


def test_an_explicit_event_id_is_kept(settings: Settings) -> None:
    explicit = {"name": "purchase", "params": {"event_id": "order-77-purchase"}}
    assert event_ids(Ingestor(settings), request_body(explicit)) == ["order-77-purchase"]


def test_the_id_is_a_hash_keyed_with_the_site_secret(settings: Settings, tmp_path: Path) -> None:
    ids = event_ids(Ingestor(settings), request_body(PAGE_VIEW, ADD_TO_CART, user_id="cust-9"))
    for event_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", event_id)
        assert CLIENT_ID not in event_id and "cust-9" not in event_id
    # Another installation (another secret) derives other ids from the same hits: nobody
    # without the secret can test a guessed client id against an id in the lake.
    other = settings.model_copy(update={"data_dir": tmp_path / "elsewhere"})
    assert other.site_key_file != settings.site_key_file
    others = event_ids(Ingestor(other), request_body(PAGE_VIEW, ADD_TO_CART, user_id="cust-9"))
    assert not set(ids) & set(others)


def test_params_too_deep_to_write_back_are_rejected_not_a_crash() -> None:
    params: dict[str, Any] = {}
    for _ in range(100_000):
        params = {"a": params}
    with pytest.raises(Rejected, match="bad_json"):
        canonical_params(params)
