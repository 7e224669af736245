"""The personal-data rule (pipeline.events.personal_data) and what a rejected record keeps
(pipeline.privacy.redaction)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events.personal_data import (
    CONTROL_CHARACTER,
    MAYBE_PERSONAL,
    personal_data_in,
    redact_personal_data,
    strip_control_characters,
)
from pipeline.lake.store import RejectedPayload
from pipeline.privacy.redaction import WITHHELD, redact_payload
from pipeline.privacy.urls import scrub_url

PERSONAL = {
    "alice@example.com": "email",
    "alice%40example.com": "email",
    " 192.0.2.1": "ip",
    "192%2E0%2E2%2E1": "ip",
    "at 192.0.2.1.": "ip",
    "2001:db8::1": "ip",
    "id:2001:db8::1": "ip",
    "+1 202 555 0143": "phone",
    "+4915112345678": "phone",
    "%2B4915112345678": "phone",
    "(202) 555-0143": "phone",
    "1234567890.1700000000": "client-id",
    "GA1.1.1234567890.1700000000": "client-id",
    "GA1.2.123.456": "client-id",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)": "user-agent",
    "Dalvik/2.1.0 (Linux; U; Android 11)": "user-agent",
}
NOT_PERSONAL = [
    "react@18.2.0", "1.2.3", "v1.2.3", "10:00:00", "Outbound::Link", "1700000000",
    "2026-11-01T10:00:00.123456Z", "550e8400-e29b-41d4-a716-446655440000", "T-1001",
    "Outbound Link: Click", "spring-2024", "curl/8.4.0", "9f86d081884c7d65",
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind"), sorted(PERSONAL.items()))
def test_each_kind_is_found_and_redacted(text: str, kind: str) -> None:
    assert personal_data_in(text) == kind
    redacted = redact_personal_data(text)
    assert f"[{kind}]" in redacted
    assert personal_data_in(redacted) is None
    assert redact_personal_data(redacted) == redacted


@pytest.mark.parametrize("text", NOT_PERSONAL)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert personal_data_in(text) is None
    assert redact_personal_data(text) == text


# Pieces of personal data, lookalikes, separators and controls, joined at random.
_PIECES = [*PERSONAL, *NOT_PERSONAL, "@", "%40", "%2", ".", ":", "::", "+", "/", " ", "(", ";",
           "\x00", "\u200b", "\u202e", "1", "12", "123", "2001", "db8"]  # fmt: skip
texts = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=4)), max_size=8).map("".join)


@settings(deadline=None)
@given(texts)
def test_the_bulk_pre_filters_miss_nothing_the_rule_finds(text: str) -> None:
    # The bulk decoder vouches only for text its RE2 pre-filters pass over: each must
    # match wherever the per-event rule would change or refuse the text.
    column = pa.array([text])
    maybe_personal = pc.match_substring_regex(column, MAYBE_PERSONAL)[0].as_py()
    control = pc.match_substring_regex(column, CONTROL_CHARACTER)[0].as_py()
    if personal_data_in(text) is not None or redact_personal_data(text) != text:
        assert maybe_personal
    if strip_control_characters(text) != text:
        assert control


@pytest.mark.parametrize("text", [*PERSONAL, *NOT_PERSONAL])
def test_the_pre_filter_matches_every_personal_example(text: str) -> None:
    matched = pc.match_substring_regex(pa.array([text]), MAYBE_PERSONAL)[0].as_py()
    assert matched or text in NOT_PERSONAL


def test_control_characters_are_stripped() -> None:
    text = "a\x00b\x1b[0m\x7f\x85\u00ad\u061c\u200b\u200d\u202e\u2066\u2069\ufeff\ufff9c"
    assert strip_control_characters(text) == "ab[0mc"
    # Letters, emoji and combining marks stay.
    assert strip_control_characters("café e\u0301 \U0001f600") == "café e\u0301 \U0001f600"


def test_a_rejected_payload_keeps_field_names_and_redacted_values_only() -> None:
    raw = {
        "event_id": "e-1",
        "visitor_id": "+44 20 7946 0123",
        "user_id": "1234567890.1700000000",
        "utm_campaign": "promo for alice@example.com",
        "browser": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        "value": 12.5,
        "engagement_time_ms": 4915112345678,
        "session_id": 4915112345678,  # a phone number sent as a number
        "client_ip": "192.0.2.1",
        "ua": "anything at all",
        "params": {"email": "bob@example.com"},
        "currency": "EUR\x1b]0;title\x07",
    }
    kept = json.loads(redact_payload(json.dumps(raw)))
    assert kept == {
        "event_id": "e-1",
        "visitor_id": WITHHELD,
        "user_id": WITHHELD,
        "utm_campaign": "promo for [email]",
        "browser": "[user-agent]",
        "value": 12.5,
        "engagement_time_ms": 4915112345678,
        "session_id": WITHHELD,
        "client_ip": WITHHELD,
        "ua": WITHHELD,
        "params": WITHHELD,
        "currency": "EUR]0;title",
    }


@pytest.mark.parametrize(
    "text", ["not json at all 192.0.2.1", '["alice@example.com"]', '"+4915112345678"', "{"]
)
def test_a_payload_that_is_no_object_keeps_only_its_length(text: str) -> None:
    kept = json.loads(redact_payload(text))
    assert kept == f"{WITHHELD}: {len(text)} characters, not a JSON object"


def test_the_stored_rejection_is_redacted() -> None:
    payload = json.dumps({"visitor_id": "alice@example.com", "x@example.org": 1})
    stored = RejectedPayload("unknown_field", "field 'x@example.org'", payload, "line 1").redacted()
    assert "example" not in json.dumps(stored)
    assert json.loads(stored["payload"]) == {"visitor_id": WITHHELD, "[email]": WITHHELD}


def test_a_user_agent_across_path_segments_is_cut_and_the_rest_redacted() -> None:
    agent = quote("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0", safe="/();")
    url = scrub_url(f"https://ref.example/from/2001:db8::5/a%40b.example/{agent}").url
    assert url == "https://ref.example/from/[ip]/[email]/[user-agent]"
    assert scrub_url(url).url == url
