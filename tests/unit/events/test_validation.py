from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import ValidationSettings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import (
    TimestampWindow,
    format_event_ts,
    history_window,
    now_micros,
    parse_event_ts,
)
from pipeline.events.validation import validate_event

NOW = parse_event_ts("2026-11-20T12:00:00Z")
COLLECTOR = TimestampWindow(max_future=timedelta(minutes=15), max_past=timedelta(hours=72))
HISTORY = TimestampWindow(max_future=timedelta(minutes=15))


def event(**fields: Any) -> dict[str, Any]:
    base = {
        "event_id": "e1",
        "event_name": "page_view",
        "event_ts": "2026-11-20T11:00:00Z",
        "site_id": "shop.example",
        "visitor_id": "v1",
    }
    return {**base, **fields}


def reason_of(raw: object, window: TimestampWindow = COLLECTOR) -> str:
    with pytest.raises(Rejected) as caught:
        validate_event(raw, now_micros=NOW, window=window)
    return caught.value.reason


@pytest.mark.parametrize(
    ("given_ts", "canonical"),
    [
        ("2026-11-20T11:00:00Z", "2026-11-20T11:00:00.000000Z"),
        ("2026-11-20T13:00:00+02:00", "2026-11-20T11:00:00.000000Z"),
        ("2026-11-20T06:30:00.5-04:30", "2026-11-20T11:00:00.500000Z"),
        ("2026-11-20t11:00:00.123456789z", "2026-11-20T11:00:00.123456Z"),
        (NOW - 3_600_000_000, "2026-11-20T11:00:00.000000Z"),
    ],
)
def test_timestamps_normalise_to_utc(given_ts: object, canonical: str) -> None:
    assert (
        validate_event(event(event_ts=given_ts), now_micros=NOW, window=COLLECTOR)["event_ts"]
        == canonical
    )


@pytest.mark.parametrize(
    "bad_ts",
    [
        "2026-11-20T11:00:00",
        "2026-11-20",
        "yesterday",
        "2026-13-40T11:00:00Z",
        True,
        1.5,
        None,
        "x" * 50,
    ],
)
def test_bad_timestamps(bad_ts: object) -> None:
    assert reason_of(event(event_ts=bad_ts)) in (Reason.BAD_TIMESTAMP, Reason.MISSING_FIELD)


def test_collector_window_bounds_past_and_future_history_only_future() -> None:
    old = event(event_ts="2026-11-10T00:00:00Z")
    assert reason_of(old) == Reason.TIMESTAMP_TOO_OLD
    assert validate_event(old, now_micros=NOW, window=HISTORY)["event_ts"].startswith("2026-11-10")
    assert reason_of(event(event_ts="1999-12-31T23:59:59Z"), HISTORY) == Reason.TIMESTAMP_TOO_OLD
    future = event(event_ts="2026-11-20T12:16:00Z")
    assert reason_of(future) == reason_of(future, HISTORY) == Reason.TIMESTAMP_IN_FUTURE
    skewed = event(event_ts="2026-11-20T12:14:00Z")
    assert validate_event(skewed, now_micros=NOW, window=HISTORY)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"value": float("nan")}, Reason.VALUE_NOT_FINITE),
        ({"value": float("inf")}, Reason.VALUE_NOT_FINITE),
        ({"value": "12"}, Reason.WRONG_TYPE),
        ({"value": True}, Reason.WRONG_TYPE),
        ({"engagement_time_ms": 1.5}, Reason.WRONG_TYPE),
        ({"engagement_time_ms": -1}, Reason.NEGATIVE_NUMBER),
        # Beyond what an Arrow column holds: one such event must not fail a whole batch.
        ({"engagement_time_ms": 2**63}, Reason.WRONG_TYPE),
        ({"engagement_time_ms": 10**200}, Reason.WRONG_TYPE),
        ({"value": 2**53 + 1}, Reason.WRONG_TYPE),
        ({"currency": "usd"}, Reason.BAD_CURRENCY),
        ({"currency": "ABC"}, Reason.BAD_CURRENCY),
        ({"country": "XX"}, Reason.BAD_COUNTRY),
        ({"device_category": "phone"}, Reason.BAD_ENUM),
        ({"page_url": "u" * 2049}, Reason.TOO_LONG),
        ({"event_id": ""}, Reason.EMPTY_FIELD),
        ({"site_id": 5}, Reason.WRONG_TYPE),
        ({"ip": "1.2.3.4"}, Reason.UNKNOWN_FIELD),
        # Ids must arrive pseudonymous: an e-mail or IP address would be stored as it is.
        ({"visitor_id": "alice@example.com"}, Reason.NOT_PSEUDONYMOUS),
        ({"user_id": "bob%40example.org"}, Reason.NOT_PSEUDONYMOUS),
        ({"visitor_id": "192.0.2.7"}, Reason.NOT_PSEUDONYMOUS),
        ({"user_id": "2001:db8::1"}, Reason.NOT_PSEUDONYMOUS),
        # ...anywhere in any id or name, and phone numbers, GA client ids, user agents too.
        ({"visitor_id": "v-192.0.2.7"}, Reason.NOT_PSEUDONYMOUS),
        ({"visitor_id": "+49 151 2345 6789"}, Reason.NOT_PSEUDONYMOUS),
        ({"visitor_id": "(202) 555-0143"}, Reason.NOT_PSEUDONYMOUS),
        ({"user_id": "1234567890.1700000000"}, Reason.NOT_PSEUDONYMOUS),
        ({"user_id": "GA1.1.123.456"}, Reason.NOT_PSEUDONYMOUS),
        ({"session_id": "alice@example.com"}, Reason.NOT_PSEUDONYMOUS),
        ({"event_id": "order-for-alice@example.com"}, Reason.NOT_PSEUDONYMOUS),
        ({"transaction_id": "T-198.51.100.7"}, Reason.NOT_PSEUDONYMOUS),
        ({"event_name": "signup alice@example.com"}, Reason.NOT_PSEUDONYMOUS),
        ({"event_name": "Mozilla/5.0 (X11; Linux x86_64)"}, Reason.NOT_PSEUDONYMOUS),
        # An address split by an invisible character is found once it is stripped.
        ({"user_id": "alice\u200b@example.com"}, Reason.NOT_PSEUDONYMOUS),
        # A field that is only control characters is empty.
        ({"event_id": "\u202e\x00"}, Reason.EMPTY_FIELD),
    ],
)
def test_field_rules(fields: dict[str, Any], reason: str) -> None:
    assert reason_of(event(**fields)) == reason


def test_ids_that_only_look_personal_pass() -> None:
    for visitor in ("react@18.2.0", "1.2.3", "1700000000", "T-1001", "9f86d081884c7d65"):
        assert validate_event(event(visitor_id=visitor), now_micros=NOW, window=COLLECTOR)
    for name in ("Outbound Link: Click", "sign_up", "File Download"):
        assert validate_event(event(event_name=name), now_micros=NOW, window=COLLECTOR)


def stored(**fields: str) -> dict[str, str]:
    """What validation keeps of `fields` in an otherwise valid event."""
    valid = validate_event(event(**fields), now_micros=NOW, window=COLLECTOR)
    return {name: valid[name] for name in fields}


def test_personal_data_in_free_text_is_redacted() -> None:
    assert stored(
        utm_campaign="promo alice@example.com",
        utm_term="+1 202 555 0143",
        utm_content="from 203.0.113.9 and 2001:db8::5",
        utm_source="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0",
        utm_medium="cid 1234567890.1700000000",
        browser="Chrome",
    ) == {
        "utm_campaign": "promo [email]",
        "utm_term": "[phone]",
        "utm_content": "from [ip] and [ip]",
        "utm_source": "[user-agent]",
        "utm_medium": "cid [client-id]",
        "browser": "Chrome",
    }


def test_control_characters_are_stripped_from_every_text_field() -> None:
    # ESC goes, the "[31m" it would have started stays as plain text.
    controls = "\x00\x1b[31m\x07\x85\u202e\u200b\u2066\ufeff"
    fields = {"event_name": "sign_up", "utm_campaign": "spring", "os": "Linux"}
    sent = {name: f"{value[:2]}{controls}{value[2:]}" for name, value in fields.items()}
    kept = {name: f"{value[:2]}[31m{value[2:]}" for name, value in fields.items()}
    assert stored(**sent, site_id=f"shop.example{controls}") == {
        **kept,
        "site_id": "shop.example[31m",
    }


def test_integers_at_the_arrow_limits_are_bounded_for_the_warehouse() -> None:
    # Arrow holds any int64, but a session's engagement is summed in BIGINT: 31 days at
    # most per event (the schema's maximum).
    assert reason_of(event(engagement_time_ms=2**63 - 1)) == Reason.NUMBER_TOO_LARGE
    # A value as large as a float64 holds exactly is a value no site takes (its bound,
    # max_event_value, is at most 1e12): tests/unit/events/test_site_rules.py.
    assert reason_of(event(value=2**53)) == Reason.VALUE_TOO_LARGE


def test_required_fields_and_objects() -> None:
    for name in ("event_id", "event_name", "event_ts", "site_id", "visitor_id"):
        raw = event()
        del raw[name]
        assert reason_of(raw) == Reason.MISSING_FIELD
    assert reason_of([event()]) == Reason.NOT_AN_OBJECT


def test_nulls_mean_absent_and_valid_values_pass() -> None:
    result = validate_event(
        event(value=19.99, currency="EUR", country="DE", device_category="tablet", page_url=None),
        now_micros=NOW,
        window=COLLECTOR,
    )
    assert "page_url" not in result
    assert (result["value"], result["currency"], result["country"]) == (19.99, "EUR", "DE")


@given(st.integers(min_value=946_684_800_000_000, max_value=4_102_444_800_000_000))
def test_canonical_timestamp_round_trips(micros: int) -> None:
    assert parse_event_ts(format_event_ts(micros)) == micros


@given(
    st.dictionaries(
        st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(), st.floats())
    )
)
def test_arbitrary_objects_never_crash(raw: dict[str, object]) -> None:
    try:
        validate_event(raw, now_micros=NOW, window=HISTORY)
    except Rejected as rejected:
        assert rejected.reason in set(Reason)
        assert "\n" not in rejected.line()


def test_hostile_json_is_a_named_rejection_not_a_crash() -> None:
    from pipeline.events.decode import decode_json
    from pipeline.privacy.hashing import keyed_hash

    for body, reason in [
        (b'{"value": ' + b"9" * 5000 + b"}", "bad_json"),  # beyond Python's int limit
        (b"[" * 100_000 + b"]" * 100_000, "bad_json"),  # deep nesting
    ]:
        with pytest.raises(Rejected) as rejected:
            decode_json(body)
        assert rejected.value.reason == reason
    surrogate = decode_json(b'{"event_id": "a\\ud800"}')
    assert isinstance(surrogate, dict)
    with pytest.raises(Rejected) as rejected:
        validate_event(
            {**surrogate, "event_name": "page_view", "event_ts": "2026-11-01T10:00:00Z",
             "site_id": "s", "visitor_id": "v"},
            now_micros=now_micros(), window=history_window(ValidationSettings()),
        )  # fmt: skip
    assert rejected.value.reason == "bad_text"
    assert len(keyed_hash(b"k", surrogate["event_id"])) == 32  # hashes, does not raise
