"""The hot path's shortcuts give exactly what the plain code gave: JSON bodies, event ids,
salts per second, memoised stable ids, GA4 name checks, and the producer's encoding and
partitioning (kafka-python's murmur2, bit for bit)."""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner
from kafka.partitioner.default import murmur2 as kafka_murmur2

from pipeline.collector.enrichment import Ingestor, RequestContext, random_event_id
from pipeline.collector.ga4 import parse_mp
from pipeline.collector.hits import decode_body
from pipeline.collector.plainsignal import parse_api_event
from pipeline.config import Settings, load_settings
from pipeline.events.decode import decode_json
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import MICROS, to_micros
from pipeline.kafka.producer import VisitorPartitioner, encode_event, murmur2

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

BODIES = [
    b'{"name":"page_view","url":"https://shop.example/"}',
    b'{"name":"x","url":"https://shop.example/","value":12345678901234567890123}',
    b'{"name":"x","url":"https://shop.example/","value":18446744073709551615}',
    b'{"name":"x","url":"https://shop.example/","value":1e400}',
    b'{"name":"x","url":"https://shop.example/","value":NaN}',
    b'{"name":"x","url":"https://shop.example/","value":-0.0}',
    b'{"name":"\\ud800","url":"https://shop.example/"}',
    b'{"n":"pageview","u":"https://shop.example/","p":{"transaction_id":12345678901234567890123}}',
    b'\xef\xbb\xbf{"name":"x","url":"https://shop.example/"}',
    '{"name":"x","url":"https://shop.example/"}'.encode("utf-16"),
    b'{"name":"x","name":"y","url":"https://shop.example/"}',
    b'{"name":"x",}',
    b"[1, 2]",
    b'"text"',
    b"\xff\xfe\xfd",
    b"[" * 5000 + b"]" * 5000,
    b"",
]


def _outcome(decode: Any, body: bytes) -> object:
    try:
        return ("value", json.dumps(decode(body), sort_keys=True, default=repr))
    except Rejected as rejected:
        return ("rejected", rejected.reason, rejected.detail)
    except ValueError as exc:  # json.dumps of a lone surrogate or NaN spelled alike
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("body", BODIES)
def test_decode_body_reads_as_decode_json(body: bytes) -> None:
    assert _outcome(decode_body, body) == _outcome(decode_json, body)


@given(st.dictionaries(st.text(max_size=8), st.none() | st.booleans() | st.integers() | st.text()))
def test_decode_body_reads_flat_objects_as_decode_json(payload: dict[str, object]) -> None:
    body = json.dumps(payload).encode()
    assert decode_body(body) == decode_json(body)


def test_plainsignal_big_integer_stays_an_integer() -> None:
    body = BODIES[7]
    hit = parse_api_event(body).hit
    assert hit.transaction_id == "12345678901234567890123"


def test_random_event_ids_are_uuid4_hex() -> None:
    ids = {random_event_id() for _ in range(2000)}
    assert len(ids) == 2000
    for event_id in ids:
        parsed = uuid.UUID(hex=event_id)
        assert parsed.hex == event_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={"SESSIONFLOW_DATA_DIR": str(tmp_path), "SESSIONFLOW_SITES": '["shop.example"]'}
    )


def test_salts_change_at_midnight_to_the_second(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    before = to_micros(datetime(2026, 11, 20, 23, 59, 59, 999_999, tzinfo=UTC))
    after = to_micros(datetime(2026, 11, 21, 0, 0, 0, tzinfo=UTC))
    moment = datetime.fromtimestamp(before // MICROS, UTC)
    assert ingestor._salts_at(before) == ingestor.salts.salts(moment)
    assert ingestor._salts_at(after)[0] != ingestor._salts_at(before)[0]
    assert ingestor._salts_at(after) == ingestor.salts.salts(
        datetime.fromtimestamp(after / MICROS, UTC)
    )


def test_memoised_stable_ids_are_the_site_keys_ids(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    for client in ("a", "b", "a"):
        assert ingestor._stable_id("shop.example", "client", client) == (
            ingestor.site_keys.stable_id("shop.example", "client", client)
        )


def test_cookie_free_visitor_id_unchanged_by_salt_memo(settings: Settings) -> None:
    body = b'{"name":"page_view","url":"https://shop.example/"}'
    now = to_micros(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    context = RequestContext("198.51.100.9", CHROME, {"user-agent": CHROME}, now)
    ingestor = Ingestor(settings)
    first = ingestor.to_canonical(parse_api_event(body).hit, context)
    second = ingestor.to_canonical(parse_api_event(body).hit, context)
    assert first["visitor_id"] == second["visitor_id"]


@pytest.mark.parametrize(
    "params",
    [
        {"page_location": "https://shop.example/", "session_id": "1"},
        {"ga_x": "1"},  # reserved prefix
        {"firebase_conversion": 1},  # reserved name
        {"1bad": "x"},  # bad name
        {"x" * 41: "x"},  # name too long
        {"page_title": "t" * 301},  # value too long
        {"page_location": "u" * 1000},  # at the limit
        {"x": {"nested": 1}},  # wrong type
        {"session_id": "9" * 500},  # unbounded
        {"items": [{"item_id": "a", "ga_bad": 1}]},
    ],
)
def test_ga4_param_fast_path_finds_what_the_full_checks_find(params: dict[str, Any]) -> None:
    # The full checks' findings, built by hand for the same param, are what parse_mp reports.
    body = json.dumps({"client_id": "c", "events": [{"name": "e", "params": params}]}).encode()
    findings = [(f.field_path, f.reason) for f in parse_mp("shop.example", body).findings]
    from pipeline.collector import ga4

    expected: list[tuple[str, str]] = []
    for name, value in params.items():
        path = ga4._join("events[0].params", name)
        found = ga4._name_findings(
            name, path, 0, "param name", ga4.GA4_MAX_NAME_LENGTH, Reason.BAD_NAME,
            ga4.RESERVED_PARAM_NAMES, ga4.RESERVED_PARAM_PREFIXES,
        )  # fmt: skip
        if name == "items":
            found += ga4._items_findings(value, path, 0)
        else:
            limit = (
                None
                if name in ga4._UNBOUNDED_PARAMS
                else ga4.GA4_PARAM_VALUE_LENGTHS.get(name, ga4.GA4_MAX_PARAM_VALUE_LENGTH)
            )
            found += ga4._value_findings(value, path, 0, limit)
        expected += [(f.field_path, f.reason) for f in found]
    assert findings == expected


# -- the producer ---------------------------------------------------------------------------


def test_murmur2_is_kafka_pythons() -> None:
    rng = random.Random(7)
    for length in range(0, 90):
        for _ in range(20):
            data = bytes(rng.getrandbits(8) for _ in range(length))
            assert murmur2(data) == kafka_murmur2(data)
    assert murmur2(os.urandom(4096)) >= 0


class _Cluster:
    def __init__(self, partitions: set[int]) -> None:
        self._partitions = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions if topic == "t" else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self._partitions


@pytest.mark.parametrize("partitions", [{0}, {0, 1, 2}, set(range(6)), set(range(7))])
def test_visitor_partitioner_picks_the_default_partitioners_partition(
    partitions: set[int],
) -> None:
    cluster = _Cluster(partitions)
    ours, theirs = VisitorPartitioner(), DefaultPartitioner()
    for visitor in range(500):
        key = f"shop.example/{visitor:032x}".encode()
        assert ours.partition("t", key, key, None, None, cluster) == theirs.partition(
            "t", key, key, None, None, cluster
        )
    assert ours.partition("t", None, None, None, b"v", cluster) in partitions


def test_unknown_topic_is_refused() -> None:
    with pytest.raises(ValueError):
        VisitorPartitioner().partition("other", b"k", b"k", None, None, _Cluster({0}))


@pytest.mark.parametrize(
    "event",
    [
        {"event_id": "e", "site_id": "s", "value": 42.5, "page_url": "https://é.example/ü"},
        {"event_id": "e", "value": 1e16, "n": None, "ok": True, "list": [1, 2]},
        {"event_id": "e", "big": 2**70},
    ],
)
def test_encode_event_is_compact_utf8_json_of_the_same_value(event: dict[str, Any]) -> None:
    encoded = encode_event(event)
    assert json.loads(encoded) == event
    assert b" " not in encoded
    assert list(json.loads(encoded)) == list(event)  # key order kept
    if "page_url" in event:
        assert "é".encode() in encoded  # not \\u-escaped


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_encode_event_keeps_non_finite_numbers_for_the_consumer_to_reject(value: float) -> None:
    # orjson would write null, and the consumer would then accept the event without it.
    encoded = encode_event({"event_id": "e", "value": value})
    assert encoded == json.dumps({"event_id": "e", "value": value}, separators=(",", ":")).encode()
