"""The consumer's bulk path gives exactly what the per-event path gives, record by record.

`accept_json_batch` decodes and validates a fetched batch in bulk and hands every record
it cannot vouch for to `accept_json`. These tests run both on the same records, clean and
hostile mixed, and require the same accepted events (same Arrow rows, same order) and the
same rejections (same reasons, details, payloads and sources, same order).
"""

from __future__ import annotations

import json
import random
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Settings, SiteSettings, load_settings
from pipeline.dev.generator import GeneratorConfig, generate_events
from pipeline.events.site_rules import SiteRules
from pipeline.events.timestamps import history_window, parse_event_ts
from pipeline.events.validation import validate_event
from pipeline.lake.processing import accept_json, accept_json_batch
from pipeline.lake.store import RejectedPayload, events_to_table

NOW = parse_event_ts("2026-11-02T00:00:00Z")
WINDOW = history_window(load_settings(environ={}).validation)
BASE: dict[str, Any] = {
    "event_id": "e-1",
    "event_name": "page_view",
    "event_ts": "2026-11-01T10:00:00.123456Z",
    "site_id": "shop.example",
    "visitor_id": "v-1",
}


def _json(**fields: Any) -> bytes:
    event = {**BASE, **fields}
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


HOSTILE: list[bytes] = [
    b"",
    b"not json",
    b"null",
    b"[1, 2]",
    b'"text"',
    b"{}",
    b"\xef\xbb\xbf" + _json(),  # a BOM: json.loads takes it, msgspec does not
    _json().decode().encode("utf-16"),
    _json()[:-1] + b',"event_id":"dup"}',  # duplicate key: the last one wins
    _json(value=float("nan")),
    _json()[:-1] + b',"value":1e400}',
    _json(value=2**53),
    _json(value=2**53 + 1),
    _json(value=-(2**53) - 1),
    # Past int64 either way: Arrow would raise, so the bulk path must hand these back.
    _json(event_ts=-(2**63) - 1),
    _json(event_ts=2**63),
    _json(engagement_time_ms=2**63),
    _json(value=-3, event_name="purchase"),
    _json(value=-3, event_name="sign_up"),
    _json(value=True),
    _json(engagement_time_ms=1.0),
    _json(engagement_time_ms=-1),
    _json(engagement_time_ms=2**63 - 1),
    _json(unknown="x"),
    _json(unknown=None),
    _json(event_id=None),
    _json(event_id=""),
    _json(event_id=7),
    _json(event_id="x" * 129),
    _json(event_id=...),
    _json(session_id=""),
    _json(device_category="phone"),
    _json(device_category=None),
    _json(currency="XXY"),
    _json(currency="EUR", value=3),
    _json(country="ZZ"),
    _json(country="de"),
    _json(event_ts="2026-11-01T10:00:00+02:00"),
    _json(event_ts="2026-11-01t10:00:00z"),
    _json(event_ts="2026-11-01 10:00:00Z"),
    _json(event_ts="2026-11-01T10:00:00.1234567Z"),
    _json(event_ts="2026-02-30T10:00:00Z"),
    _json(event_ts="2026-11-01T24:00:00Z"),
    _json(event_ts="2026-11-01T23:59:60Z"),
    _json(event_ts="2026-13-01T10:00:00Z"),
    _json(event_ts="1999-12-31T23:59:59Z"),
    _json(event_ts="2099-01-01T00:00:00Z"),
    _json(event_ts="2026-11-01T10:00:00"),
    _json(event_ts="٢٠٢٦-11-01T10:00:00Z"),
    _json(event_ts=parse_event_ts("2026-11-01T10:00:00Z")),
    _json(event_ts=True),
    _json(event_ts=1.5),
    _json(page_url="ftp://shop.example/x"),
    _json(page_url=""),
    _json(page_url="https://shop.example/a?utm_source=" + "s" * 300),
    _json(page_url="https://shop.example/a?utm_source=news&gclid=1", utm_source=""),
    _json(page_url="https://shop.example/a?utm_medium=cpc&fbclid=2", click_id_type=""),
    _json(page_url="https://user:pw@Shop.Example:443/a b/?q=1#frag"),
    _json(page_referrer="not a url"),
    _json(page_referrer=""),
    _json(utm_campaign="mail jane.doe@example.com"),
    _json(page_url="https://shop.example/?utm_term=jane.doe%40example.com"),
    # Personal data hidden by invisible or compatibility characters (both paths refuse
    # or redact it alike), and IP hosts.
    _json(event_name="victim@exa\u034fmple.org"),
    _json(event_id="198.51\u180e.100.87"),
    _json(user_id="victim@exa\U000e0041mple.org"),
    _json(transaction_id="victim%40exa%E2%80%8Bmple.org"),
    _json(user_id="victim\uff20example.org"),
    _json(visitor_id="198\uff0e51\uff0e100\uff0e80"),
    _json(session_id="victim@example\u3002org"),
    _json(visitor_id="0049 30 12345678"),
    _json(utm_campaign="from 198\uff0e51\uff0e100\uff0e80"),
    _json(utm_term="\U0001d7cf\U0001d7d7\U0001d7d6.51.100.80"),
    _json(os="Linux\U000e0041"),
    _json(page_url="https://198.51.100.77/landing", page_referrer="http://[2001:db8::78]/f"),
    _json(browser="\ud800"),
    b'{"event_id":"\\ud800x","event_name":"a","event_ts":"2026-11-01T10:00:00Z","site_id":"s","visitor_id":"v"}',
    _json(os="Ünïcödé 😀"),
    _json(transaction_id={"nested": 1}),
    b'{"event_id": "e", "event_name": "page_view"}{"x": 1}',
    b"[" * 5000 + b"]" * 5000,
    b'{"event_id":"e","n":' + b"1" * 5000 + b"}",
    # Trust and the value bound (pipeline.events.site_rules).
    _json(trust="anonymous", event_name="purchase", value=1),
    _json(trust="authenticated"),
    _json(trust="root"),
    _json(trust=None),
    _json(value=1_000_000),
    _json(engagement_time_ms=2_678_400_000),
    _json(engagement_time_ms=2_678_400_001),
    _json(value=1_000_000.01),
    _json(value=-2_000_000, event_name="sign_up"),
    _json(value=-1, event_name="sign_up", trust="anonymous"),
    _json(value=-1, event_name="sign_up", trust="authenticated"),
    _json(value=-1, event_name="sign_up"),
    _json(value=2_000_000, currency="JPY"),
]


def _generated(count: int) -> list[bytes]:
    """Generated events as the SDK puts them on the topic (canonical UTC text), plus a few
    straight from the generator (other offsets: they take the per-event path)."""
    config = GeneratorConfig(days=1, start=date(2026, 11, 1), events_per_day=count)
    raw = list(generate_events(config))
    canonical = [
        json.dumps(validate_event(event, now_micros=NOW, window=WINDOW)).encode() for event in raw
    ]
    return canonical + [json.dumps(event).encode() for event in raw[:50]]


def _compare(payloads: list[bytes], rules: SiteRules | None = None) -> None:
    def source(index: int) -> str:
        return f"topic/0/{index}"

    one_by_one = [
        accept_json(payload, source(i), now=NOW, window=WINDOW, rules=rules)
        for i, payload in enumerate(payloads)
    ]
    expected_events = events_to_table(
        [outcome for outcome in one_by_one if not isinstance(outcome, RejectedPayload)]
    )
    expected_rejects = [outcome for outcome in one_by_one if isinstance(outcome, RejectedPayload)]
    # The bulk path at any size (a real fetch takes it from BULK_MIN_RECORDS records).
    batch = accept_json_batch(
        payloads, source, now=NOW, window=WINDOW, rules=rules, bulk_min_records=0
    )
    assert batch.rejects == expected_rejects
    assert batch.events.schema == expected_events.schema
    assert batch.events.to_pylist() == expected_events.to_pylist()


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_each_hostile_record_alone(payload: bytes) -> None:
    _compare([payload])


def test_clean_and_hostile_records_mixed_keep_their_order() -> None:
    records = _generated(600) + HOSTILE * 3
    random.Random(13).shuffle(records)
    _compare(records)


SITE_RULES = SiteRules.from_settings(
    Settings(
        sites=["shop.example", "blog.example"],
        currency_rates={"EUR": 1.25, "JPY": 0.0067},
        site={"shop.example": SiteSettings(anonymous_purchases=False, max_event_value=500)},
    )
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "site_id": st.sampled_from(["shop.example", "blog.example"]),
                "event_name": st.sampled_from(["purchase", "refund", "page_view", "sign_up"]),
                "trust": st.sampled_from(["anonymous", "authenticated", None]),
                "currency": st.sampled_from(["USD", "EUR", "JPY", "GBP", None]),
                "value": st.one_of(
                    st.none(),
                    st.sampled_from([400, 500, 500.0000001, 1e6, 1e6 + 1, 74_626.8, 8e5, -600]),
                    st.floats(min_value=-2e6, max_value=2e8),
                ),
            }
        ),
        min_size=1,
        max_size=12,
    )
)
def test_site_rules_agree(changes: list[dict[str, Any]]) -> None:
    """A per-site bound, rates, and a site refusing anonymous purchases: both paths take
    and refuse the same events with the same reasons."""
    _compare([json.dumps({**BASE, **change}).encode() for change in changes], SITE_RULES)


def test_an_empty_batch() -> None:
    _compare([])


def test_a_batch_of_only_rejections() -> None:
    _compare([b"nope", b"{}", b"null"])


_values = st.one_of(
    st.none(),
    st.booleans(),
    # Beyond these the per-event path accepts what Arrow cannot store (both paths raise).
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["2026-11-01T10:00:00Z", "https://shop.example/p?utm_source=x", "EUR", "DE"]),
)
_fields = st.sampled_from([*BASE, "value", "currency", "country", "page_url", "utm_source",
                           "engagement_time_ms", "device_category", "click_id_type", "other"])  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(_fields, _values, max_size=4), min_size=1, max_size=8))
def test_random_field_values(changes: list[dict[str, Any]]) -> None:
    payloads = []
    for change in changes:
        try:
            payloads.append(json.dumps({**BASE, **change}).encode())
        except (ValueError, UnicodeEncodeError):
            continue
    _compare(payloads)


def test_the_decoder_derives_from_the_schema() -> None:
    """Every canonical field is a field of the bulk decoder's struct, and nothing else."""
    from pipeline.events.batch_decode import _decoder
    from pipeline.events.schema import canonical_arrow_schema

    struct = _decoder().type
    assert set(struct.__struct_fields__) == set(canonical_arrow_schema().names)


def test_a_small_batch_takes_the_per_event_path_with_the_same_outcomes() -> None:
    payloads = [*HOSTILE[:3], *(_json(event_id=f"small-{i}") for i in range(3))]
    one_by_one = [
        accept_json(p, f"t/0/{i}", now=NOW, window=WINDOW) for i, p in enumerate(payloads)
    ]
    batch = accept_json_batch(payloads, lambda i: f"t/0/{i}", now=NOW, window=WINDOW)
    assert batch.rejects == [o for o in one_by_one if isinstance(o, RejectedPayload)]
    accepted = [o for o in one_by_one if not isinstance(o, RejectedPayload)]
    assert batch.events.to_pylist() == events_to_table(accepted).to_pylist()
