"""Fuzzing canonical validation: every malformed event (a value, or the bytes of a JSON
record) is accepted or rejected with a named reason, never an unhandled exception; and
the consumer's bulk path (`accept_json_batch`, over `decode_batch`) takes exactly the
records the per-event path takes, with the same reasons, whatever the batch holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import load_settings
from pipeline.events.batch_decode import decode_batch
from pipeline.events.personal_data import strip_control_characters
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import collector_window, history_window, parse_event_ts
from pipeline.events.validation import field_rules, validate_event
from pipeline.lake.processing import accept_json, accept_json_batch
from pipeline.lake.store import RejectedPayload, events_to_table
from tests.reliability.json_strategies import (
    CONFUSABLE_SITES,
    SQL_LIKE,
    dumps,
    json_values,
    mutated_bytes,
    mutated_object,
)
from tests.reliability.support import Outcomes, fuzz_settings

OUTCOMES = Outcomes()  # per-event path
BULK = Outcomes()  # records of the batches both paths were run on
VOUCHED = Outcomes()  # of those, taken by the bulk path without the per-event one
REASONS = frozenset(Reason)
NOW = parse_event_ts("2026-11-02T00:00:00Z")
_validation = load_settings(environ={}).validation
HISTORY = history_window(_validation)
COLLECTOR = collector_window(_validation)
FIELDS = sorted(field_rules())
VALID: dict[str, Any] = {
    "event_id": "e-1", "event_name": "purchase", "event_ts": "2026-11-01T10:00:00.123456Z",
    "site_id": "shop.example", "visitor_id": "v-1", "session_id": "s-1", "user_id": "u-1",
    "page_url": "https://shop.example/p?utm_source=news&utm_campaign=spring",
    "page_referrer": "https://search.example/", "utm_medium": "email", "device_category": "mobile",
    "browser": "Chrome", "os": "Android", "country": "DE", "value": 12.5, "currency": "EUR",
    "transaction_id": "T-1", "engagement_time_ms": 1200, "visitor_scope": "client",
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    print("\n" + OUTCOMES.line("canonical validation, per event"))
    print(BULK.line("canonical validation, bulk == per event"))
    print(VOUCHED.line("  of which decided in bulk"))


def judged(raw: object, kind: str) -> str:
    """validate_event on both windows: accepted, or one named reason; counted."""
    outcomes = []
    for window in (HISTORY, COLLECTOR):
        try:
            validate_event(raw, now_micros=NOW, window=window)
            outcomes.append("accepted")
        except Rejected as rejected:
            assert rejected.reason in REASONS, rejected.reason
            assert "\n" not in rejected.line() and "\r" not in rejected.line()
            outcomes.append(rejected.reason)
    OUTCOMES.add(f"{kind} {outcomes[0]}")
    return outcomes[0]


def accept_one(payload: bytes, kind: str) -> str:
    outcome = accept_json(payload, "fuzz", now=NOW, window=HISTORY)
    if isinstance(outcome, RejectedPayload):
        assert outcome.reason in REASONS, outcome.reason
        assert "\n" not in outcome.detail, outcome.detail
        OUTCOMES.add(f"{kind} {outcome.reason}")
        return outcome.reason
    OUTCOMES.add(f"{kind} accepted")
    return "accepted"


# -- values ------------------------------------------------------------------------------


events = st.one_of(
    mutated_object(VALID, FIELDS, most=4),
    mutated_object({k: VALID[k] for k in list(VALID)[:5]}, FIELDS, most=2),
)


@fuzz_settings(2500)
@given(event=events)
def test_mutated_events_get_a_named_reason(event: dict[str, Any]) -> None:
    judged(event, "event")


@fuzz_settings(300)
@given(value=json_values)
def test_any_json_value_gets_a_named_reason(value: object) -> None:
    assert judged(value, "value") != "accepted" or isinstance(value, dict)


@fuzz_settings(200)
@given(
    site=st.sampled_from([*CONFUSABLE_SITES, *SQL_LIKE]),
    field=st.sampled_from(["site_id", "utm_campaign", "event_name", "visitor_id", "page_url"]),
)
def test_confusable_and_sql_looking_text_is_data(site: str, field: str) -> None:
    # Validation does not know the configured sites: such text is a string like another
    # (the collector refuses unknown sites). It must come back unchanged, never executed,
    # but for its invisible characters (a zero-width space), which validation strips.
    reason = judged({**VALID, field: site}, "lookalike")
    if reason == "accepted" and field != "page_url":
        event = validate_event({**VALID, field: site}, now_micros=NOW, window=HISTORY)
        assert event[field] == strip_control_characters(site)


# -- bytes -------------------------------------------------------------------------------


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """One JSON record: a mutated event's encoding, sometimes damaged further."""
    event = draw(events)
    data = dumps(event, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        data = draw(mutated_bytes(data))
    return data


@fuzz_settings(1800)
@given(payload=records())
def test_damaged_records_get_a_named_reason(payload: bytes) -> None:
    accept_one(payload, "record")


# -- the bulk path agrees with the per-event path ----------------------------------------


def _outcome(item: object) -> tuple[str, str]:
    if isinstance(item, RejectedPayload):
        return ("rejected", item.reason)
    assert isinstance(item, dict)
    return ("accepted", str(item["event_id"]))


def agree(payloads: list[bytes]) -> None:
    """accept_json_batch == accept_json on each; decode_batch vouches for no record the
    per-event path would refuse."""
    single = [accept_json(p, f"#{i}", now=NOW, window=HISTORY) for i, p in enumerate(payloads)]
    batch = accept_json_batch(
        payloads, lambda i: f"#{i}", now=NOW, window=HISTORY, bulk_min_records=0
    )
    accepted = [item for item in single if not isinstance(item, RejectedPayload)]
    rejected = [item for item in single if isinstance(item, RejectedPayload)]
    assert batch.rejects == rejected
    expected = events_to_table(accepted) if accepted else batch.events.schema.empty_table()
    assert batch.events.to_pylist() == expected.to_pylist()
    decoded = decode_batch(payloads, now_micros=NOW, window=HISTORY)
    for position in decoded.positions.to_pylist():
        assert not isinstance(single[position], RejectedPayload), payloads[position][:300]
    assert sorted([*decoded.positions.to_pylist(), *decoded.unsure]) == list(range(len(payloads)))
    VOUCHED.add("vouched for", len(decoded.positions))
    VOUCHED.add("handed to the per-event path", len(decoded.unsure))
    for item in single:
        kind, detail = _outcome(item)
        BULK.add("accepted" if kind == "accepted" else detail)


_unique = iter(range(10**9))


@st.composite
def batches(draw: st.DrawFn) -> list[bytes]:
    """Clean records (each its own event id) mixed with damaged ones."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.integers(0, 2)) == 0:
            ts = draw(
                st.sampled_from([VALID["event_ts"], "2026-11-01T10:00:00Z", 1_790_000_000 * 10**6])
            )
            event = {**VALID, "event_id": f"ok-{next(_unique)}", "event_ts": ts}
            out.append(json.dumps(event).encode())
        else:
            out.append(draw(records()))
    return out


@fuzz_settings(250)
@given(payloads=batches())
def test_bulk_and_per_event_paths_agree(payloads: list[bytes]) -> None:
    agree(payloads)


# -- a corpus of hostile records -----------------------------------------------------------


def _raw(**fields: Any) -> bytes:
    return json.dumps({**VALID, **fields}).encode()


CORPUS: dict[str, bytes] = {
    "10 MB string": _raw(page_url="https://shop.example/" + "x" * (10 << 20)),
    "10 MB campaign": _raw(utm_campaign="c" * (10 << 20)),
    "10 MB key": b'{"' + b"k" * (10 << 20) + b'": 1}',
    "deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "deep in a field": _raw()[:-1] + b', "user_id": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "5000-digit integer": _raw()[:-1] + b', "engagement_time_ms": ' + b"9" * 5000 + b"}",
    "huge exponent": _raw()[:-1] + b', "value": 1e999999}',
    "NaN": _raw(value=float("nan")),
    "Infinity": _raw(value=float("inf")),
    "-Infinity": _raw(engagement_time_ms=float("-inf")),
    "lone surrogate escaped": _raw(site_id="\ud800"),
    "lone low surrogate": b'{"event_id": "\\udc80"}',
    "surrogate pair escaped": _raw(user_id="\ud83d\ude00"),
    "raw surrogate bytes": _raw()[:-1] + b', "browser": "\xed\xa0\x80"}',
    "invalid utf-8": _raw()[:-1] + b', "os": "\xff\xfe"}',
    "overlong utf-8": _raw()[:-1] + b', "os": "\xc0\xaf"}',
    "bom": b"\xef\xbb\xbf" + _raw(),
    "utf-16": _raw().decode().encode("utf-16"),
    "nul": b"\x00" * 100,
    "empty": b"",
    "null": b"null",
    "array of events": b"[" + _raw() + b"]",
    "duplicate key": _raw()[:-1] + b', "event_id": ""}',
    "confusable site": _raw(site_id="sh\u043ep.example"),
    "sql site": _raw(site_id="shop.example' OR 1=1 --"),
    "sql campaign": _raw(utm_campaign="'; DROP TABLE events; --"),
    "int64 max ms": _raw(engagement_time_ms=2**63 - 1),
    "int64 past ms": _raw(engagement_time_ms=2**63),
    "ts past int64": _raw(event_ts=2**63),
    "negative ts": _raw(event_ts=-1),
    "ts year 0": _raw(event_ts="0000-01-01T00:00:00Z"),
    "ts 9999 offset": _raw(event_ts="9999-12-31T23:59:59-23:59"),
    "ts 41 chars": _raw(event_ts="2026-11-01T10:00:00.123456789012345678Z"),
    "bool for number": _raw(value=True),
    "float for integer": _raw(engagement_time_ms=1.0),
    # Ids that are personal data (not_pseudonymous), spaced so a strict pattern misses them.
    "e-mail visitor": _raw(visitor_id="alice@example.com"),
    "encoded e-mail user": _raw(user_id="alice%40example.com"),
    "ip visitor": _raw(visitor_id="192.0.2.1"),
    "spaced ip visitor": _raw(visitor_id=" 192.0.2.1"),
    "ip user and newline": _raw(user_id="192.0.2.1\n"),
    "nbsp ip visitor": _raw(visitor_id="\u00a0192.0.2.1"),
    "ipv6 user": _raw(user_id="2001:db8::1"),
    # Personal data in every other id and in the event name (not_pseudonymous too).
    "e-mail session": _raw(session_id="alice@example.com"),
    "e-mail event id": _raw(event_id="order-alice@example.com"),
    "ip transaction": _raw(transaction_id="T-198.51.100.7"),
    "e-mail event name": _raw(event_name="signup alice@example.com"),
    "user agent event name": _raw(event_name="Mozilla/5.0 (X11; Linux x86_64)"),
    "phone visitor": _raw(visitor_id="+1 202 555 0143"),
    "ga client id user": _raw(user_id="1234567890.1700000000"),
    "ga cookie user": _raw(user_id="GA1.1.1234567890.1700000000"),
    "hidden e-mail user": _raw(user_id="alice\u200b@example.com"),
    "cgj e-mail event name": _raw(event_name="victim@exa\u034fmple.org"),
    "mvs ip event id": _raw(event_id="198.51\u180e.100.87"),
    "tag e-mail user": _raw(user_id="victim@exa\U000e0041mple.org"),
    "encoded zwsp e-mail transaction": _raw(transaction_id="victim%40exa%E2%80%8Bmple.org"),
    "fullwidth e-mail user": _raw(user_id="victim\uff20example.org"),
    "fullwidth ip visitor": _raw(visitor_id="198\uff0e51\uff0e100\uff0e80"),
    "ideographic stop e-mail session": _raw(session_id="victim@example\u3002org"),
    "00 phone visitor": _raw(visitor_id="0049 30 12345678"),
    # Free text: accepted, with the personal data redacted and control characters gone.
    "ip in campaign": _raw(utm_campaign="from 203.0.113.9"),
    "user agent in source": _raw(utm_source="Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
    "phone in term": _raw(utm_term="call +49 151 2345 6789"),
    "ip in path": _raw(page_url="https://shop.example/ip/192.0.2.1/x"),
    "controls in campaign": _raw(utm_campaign="spring\x1b]8;;https://x.example\x07\u202e"),
    "controls in os": _raw(os="\x00Linux\u200b"),
    "encoded zwsp e-mail in path": _raw(
        page_url="https://shop.example/u/victim%40exa%E2%80%8Bmple.org"
    ),
    "ip host page": _raw(page_url="https://198.51.100.77/landing"),
    "ip host referrer": _raw(page_referrer="https://victim:pw@198.51.100.85:8080/x"),
    "ipv6 host referrer": _raw(page_referrer="http://[2001:db8::78]/from"),
    "fullwidth ip in campaign": _raw(utm_campaign="from 198\uff0e51\uff0e100\uff0e80"),
    "fullwidth e-mail in term": _raw(utm_term="victim\uff20example.org"),
    "00 phone in term": _raw(utm_term="call 0049 30 12345678"),
    "tag characters in os": _raw(os="Linux\U000e0041\U000e007f"),
}
# What the per-event path must make of the personal ones: the named reason, or the field's
# value as stored. Each is asserted, so the test fails when its rule is removed.
EXPECTED_REASON = {
    name: Reason.NOT_PSEUDONYMOUS
    for name in (
        "e-mail visitor", "encoded e-mail user", "ip visitor", "spaced ip visitor",
        "ip user and newline", "nbsp ip visitor", "ipv6 user", "e-mail session",
        "e-mail event id", "ip transaction", "e-mail event name", "user agent event name",
        "phone visitor", "ga client id user", "ga cookie user", "hidden e-mail user",
        "cgj e-mail event name", "mvs ip event id", "tag e-mail user",
        "encoded zwsp e-mail transaction", "fullwidth e-mail user", "fullwidth ip visitor",
        "ideographic stop e-mail session", "00 phone visitor",
    )
}  # fmt: skip
EXPECTED_VALUE = {
    "ip in campaign": ("utm_campaign", "from [ip]"),
    "user agent in source": ("utm_source", "[user-agent]"),
    "phone in term": ("utm_term", "call [phone]"),
    "ip in path": ("page_url", "https://shop.example/ip/[ip]/x"),
    "controls in campaign": ("utm_campaign", "spring]8;;https://x.example"),
    "controls in os": ("os", "Linux"),
    "encoded zwsp e-mail in path": ("page_url", "https://shop.example/u/[email]"),
    "ip host page": ("page_url", "https://ip.invalid/landing"),
    "ip host referrer": ("page_referrer", "https://ip.invalid:8080/x"),
    "ipv6 host referrer": ("page_referrer", "http://ip.invalid/from"),
    "fullwidth ip in campaign": ("utm_campaign", "from [ip]"),
    "fullwidth e-mail in term": ("utm_term", "[email]"),
    "00 phone in term": ("utm_term", "call [phone]"),
    "tag characters in os": ("os", "Linux"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_corpus(name: str) -> None:
    payload = CORPUS[name]
    outcome = accept_one(payload, "corpus")
    if name in EXPECTED_REASON:
        assert outcome == EXPECTED_REASON[name]
    if name in EXPECTED_VALUE:
        event = accept_json(payload, "corpus", now=NOW, window=HISTORY)
        assert isinstance(event, dict), event
        field, value = EXPECTED_VALUE[name]
        assert event[field] == value
    try:
        raw = json.loads(payload)
    except (ValueError, RecursionError):
        pass
    else:
        judged(raw, "corpus value")
    good = json.dumps({**VALID, "event_id": f"beside-{name}"}).encode()
    agree([good, payload, good.replace(b"beside", b"after")])


def test_the_bulk_path_takes_a_clean_batch_whole() -> None:
    # The agreement above would hold trivially if the bulk path vouched for nothing.
    payloads = [json.dumps({**VALID, "event_id": f"clean-{i}"}).encode() for i in range(50)]
    decoded = decode_batch(payloads, now_micros=NOW, window=HISTORY)
    assert decoded.unsure == [] and len(decoded.positions) == 50
    assert isinstance(decoded.table, pa.Table) and decoded.table.num_rows == 50
