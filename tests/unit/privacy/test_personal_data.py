"""The personal-data rule (pipeline.events.personal_data) and what a rejected record keeps
(pipeline.privacy.redaction)."""

from __future__ import annotations

import json
import random
import unicodedata
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
    # Hidden by invisible characters, raw or percent-encoded, or by compatibility forms.
    "victim@exa\u034fmple.org": "email",
    "198.51\u180e.100.87": "ip",
    "victim@exa\U000e0041mple.org": "email",
    "victim%40exa%E2%80%8Bmple.org": "email",
    "victim\uff20example.org": "email",
    "198\uff0e51\uff0e100\uff0e80": "ip",
    "victim@example\u3002org": "email",
    "0049 30 12345678": "phone",
}
NOT_PERSONAL = [
    "react@18.2.0", "1.2.3", "v1.2.3", "10:00:00", "Outbound::Link", "1700000000",
    "2026-11-01T10:00:00.123456Z", "550e8400-e29b-41d4-a716-446655440000", "T-1001",
    "Outbound Link: Click", "spring-2024", "curl/8.4.0", "9f86d081884c7d65",
    "0049301234567", "07700 900123",
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
           "\x00", "\u200b", "\u202e", "1", "12", "123", "2001", "db8", "00", "0049 30",
           "%E2%80%8B", "\u034f", "\u180e", "\U000e0041", "\uff20", "\uff0e", "\u3002",
           "\uff11", "\u2024", "\ufe6b", "\U0001d7ce", "\u2460", "\u00b2"]  # fmt: skip
# Characters from the ranges that hold invisible and compatibility characters, and (found
# here, not from the module's class) every character whose NFKC form holds ASCII.
_UNUSUAL = st.characters(min_codepoint=0x80, max_codepoint=0x1FFFF, codec="utf-8") | st.characters(
    min_codepoint=0xE0000, max_codepoint=0xE0FFF
)
_COMPATIBLE = [
    chr(c)
    for c in range(0x80, 0x20000)
    if not 0xD800 <= c <= 0xDFFF and any(x.isascii() for x in unicodedata.normalize("NFKC", chr(c)))
]
_LOOKALIKES: dict[str, list[str]] = {}
for _char in _COMPATIBLE:
    _LOOKALIKES.setdefault(unicodedata.normalize("NFKC", _char), []).append(_char)


def _disguised(args: tuple[str, random.Random]) -> str:
    """A personal example with some characters swapped for compatibility lookalikes."""
    text, rnd = args
    return "".join(rnd.choice(_LOOKALIKES.get(c, [c])) if rnd.random() < 0.5 else c for c in text)


texts = st.lists(
    st.one_of(
        st.sampled_from(_PIECES),
        st.tuples(st.sampled_from(list(PERSONAL)), st.randoms()).map(_disguised),
        st.text(max_size=4),
        st.text(_UNUSUAL, max_size=3),
        st.sampled_from(_COMPATIBLE),
    ),
    max_size=8,
).map("".join)


@settings(deadline=None)
@given(texts)
def test_the_bulk_pre_filters_miss_nothing_the_rule_finds(text: str) -> None:
    # The bulk decoder vouches only for text its RE2 pre-filters pass over: each must
    # match wherever the per-event rule would change or refuse the text.
    column = pa.array([text])
    maybe_personal = pc.match_substring_regex(column, MAYBE_PERSONAL)[0].as_py()
    control = pc.match_substring_regex(column, CONTROL_CHARACTER)[0].as_py()
    if personal_data_in(text) is not None or redact_personal_data(text) != text:
        assert maybe_personal or control  # the bulk path sends either to the per-event path
    if strip_control_characters(text) != text:
        assert control


@pytest.mark.parametrize("text", [*PERSONAL, *NOT_PERSONAL])
def test_the_pre_filter_matches_every_personal_example(text: str) -> None:
    matched = pc.match_substring_regex(pa.array([text]), MAYBE_PERSONAL)[0].as_py()
    assert matched or text in NOT_PERSONAL


def test_control_characters_are_stripped() -> None:
    text = "a\x00b\x1b[0m\x7f\x85\u00ad\u061c\u200b\u200d\u202e\u2066\u2069\ufeff\ufff9c"
    assert strip_control_characters(text) == "ab[0mc"
    # All of Cf and Unicode's default-ignorable code points, not a hand list.
    hidden = "\u034f\u115f\u17b4\u180e\u3164\ufe0f\uffa0\U000e0001\U000e0041\U000e007f\U000e0100"
    assert strip_control_characters(f"a{hidden}b") == "ab"
    assert pc.match_substring_regex(pa.array([hidden[-3:]]), CONTROL_CHARACTER)[0].as_py()
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


@pytest.mark.parametrize(
    ("raw", "scrubbed"),
    [
        ("https://198.51.100.77/landing", "https://ip.invalid/landing"),
        ("http://198.51.100.78/from", "http://ip.invalid/from"),
        ("http://[2001:db8::78]/from", "http://ip.invalid/from"),
        ("https://victim:pw@198.51.100.85:8080/x", "https://ip.invalid:8080/x"),
        ("https://example.org/u/victim%40exa%E2%80%8Bmple.org", "https://example.org/u/[email]"),
        ("https://example.org/u/victim\uff20example.org", "https://example.org/u/[email]"),
        ("https://example.org/?utm_source=198%EF%BC%8E51%EF%BC%8E100%EF%BC%8E80",
         "https://example.org/?utm_source=[ip]"),
    ],
)  # fmt: skip
def test_urls_lose_ip_hosts_and_hidden_personal_data(raw: str, scrubbed: str) -> None:
    assert scrub_url(raw).url == scrubbed
    assert scrub_url(scrubbed).url == scrubbed  # idempotent


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("mail victim\uff20example.org now", "mail [email] now"),
        ("from 198\uff0e51\uff0e100\uff0e80", "from [ip]"),
        ("x 1\u200b92.0.2.1", "x [ip]"),
        ("call 0049 30 12345678", "call [phone]"),
    ],
)
def test_free_text_keeps_the_redacted_normal_form(text: str, redacted: str) -> None:
    assert redact_personal_data(text) == redacted
