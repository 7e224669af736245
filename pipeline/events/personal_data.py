"""What personal data looks like in text, and the one rule for it.

Kinds: e-mail addresses, IP addresses (v4 and v6), phone numbers (international "+"
form, and North American grouping), GA client ids (`1234567890.1700000000`,
`GA1.1.1234567890.1700000000`) and user-agent text (`Mozilla/5.0`, or any
`product/version (comment; ...)`). Identifiers and names are refused when they hold one
(validation: not_pseudonymous); free text (URLs, campaign fields, browser and OS names,
rejection details and payloads) has it redacted to a placeholder naming the kind. Text is
searched as sent and percent-decoded, since an address may arrive encoded.

Control characters are stripped from every text field before any of this (they could
hide an address from the patterns, or reach an operator's terminal): C0 and C1 controls
(Unicode category Cc) and the invisible format characters that reorder or hide text:
bidi embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069, U+061C, U+200E,
U+200F), zero-width characters (U+200B..U+200D, U+2060..U+2064, U+FEFF), the line and
paragraph separators U+2028/U+2029, the soft hyphen U+00AD and the interlinear annotation
marks U+FFF9..U+FFFB. Other format characters (emoji tags, Arabic number signs) stay.

Here, not in pipeline.privacy, because validation applies it and the events room builds on
no other; privacy's redaction of URLs and rejected payloads calls the same functions.
The patterns are ASCII-only (digits are 0-9), so that `MAYBE_PERSONAL`, an RE2 pattern
the bulk decoder runs on Arrow columns, finds every text these patterns could.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import unquote

# Local part: RFC 5322 atom characters, at most 64 of them (the RFC's limit, which also
# keeps the search linear). The "@" may still be percent-encoded when the URL was
# encoded twice. The top-level domain starts with a letter, so that package versions
# such as "react@18.2.0" are not taken for addresses.
EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}(?:@|%40)[\w-]{1,63}(?:\.[\w-]{1,63})*\.[^\W\d_][\w-]+"
)
# Four dotted numbers; "1.2.3.4.5" is not an address, an address ending a sentence is.
_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?!\.?[0-9])")
# Candidates only: ipaddress decides (a clock time "10:00:00" is none).
_IPV6_CANDIDATE = re.compile(r"(?<![\w.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?!\w)")
# "+" and 7 to 15 digits (E.164), with the separators people type; or 3-3-4 grouping.
# A bare run of digits is not taken for a phone number: order numbers look the same.
_PHONE = re.compile(
    r"(?<![0-9+])\+ ?[0-9](?:[ .()/-]{0,2}[0-9]){6,14}(?![0-9])"
    r"|(?<![0-9])\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}(?![0-9])"
)
# GA's client id: a random number, a dot, the first visit's epoch seconds (2001..2033),
# alone or in the _ga cookie's spelling (GA1.2.<id>); GA4 session cookies (GS1.1.<id>).
_GA_CLIENT_ID = re.compile(
    r"(?i:\bG[AS][0-9]\.[0-9]+\.[0-9]+\.[0-9]+)|(?<![0-9.])[0-9]{1,10}\.[12][0-9]{9}(?![0-9])"
)
# A user agent: "Mozilla/5.0", or a product/version followed by a "(...;" comment.
# Everything after it is taken as part of it (user agents run to the end of the text).
_USER_AGENT = re.compile(
    r"(?<![\w.-])(?:(?i:mozilla)/[0-9]+\.[0-9]|[A-Za-z][\w.-]*/[0-9][\w.]* ?\([^()]*;)[\s\S]*"
)

# A cheap test that every text holding personal data passes (and most ids do not): an
# "@", a percent escape, digits around a dot, space, dash or parenthesis, two colons, a
# "+" before a digit, a "/" before a digit. RE2 syntax, for pyarrow.compute too.
MAYBE_PERSONAL = r"@|%[0-9A-Fa-f]{2}|[0-9][ .()-]{1,2}[0-9]|:.*:|\+ ?[0-9]|/[0-9]"
_MAYBE_PERSONAL = re.compile(MAYBE_PERSONAL)

# The control and invisible format characters stripped from text (see the docstring), as
# code point ranges; CONTROL_CHARACTER is the class in RE2 syntax (pyarrow.compute).
_CONTROL_RANGES = (
    (0x00, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x61C, 0x61C), (0x200B, 0x200F),
    (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x2069), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
)  # fmt: skip
CONTROL_CHARACTER = (
    "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in _CONTROL_RANGES) + "]"
)
_CONTROL = re.compile(
    "[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in _CONTROL_RANGES) + "]"
)


def strip_control_characters(text: str) -> str:
    return _CONTROL.sub("", text) if _CONTROL.search(text) else text


def user_agent_start(text: str) -> int | None:
    """Where user-agent text starts in `text` (it runs to the end), or None."""
    match = _USER_AGENT.search(text)
    return None if match is None else match.start()


def contains_email(text: str) -> bool:
    return EMAIL.search(text) is not None


def _ipv6_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _IPV6_CANDIDATE.finditer(text):
        found = match.group(0).rstrip(".")  # a sentence's full stop
        # Colons around an address ("at:2001:db8::1:") are punctuation; "::1" is not.
        for candidate in (found, found.rstrip(":"), found.lstrip(":"), found.strip(":")):
            if _is_ipv6(candidate):
                start = match.start() + found.index(candidate)
                spans.append((start, start + len(candidate)))
                break
    return spans


def _is_ipv6(text: str) -> bool:
    if not any(c in "0123456789abcdefABCDEF" for c in text):  # "::" alone is punctuation
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _regex_spans(pattern: re.Pattern[str]) -> Callable[[str], list[tuple[int, int]]]:
    return lambda text: [match.span() for match in pattern.finditer(text)]


# Kind -> its finder, in the order they are looked for: a user agent first (it holds
# versions that look like addresses), a GA cookie before IPv4 ("GA1.1.123.456").
_KINDS: tuple[tuple[str, Callable[[str], list[tuple[int, int]]]], ...] = (
    ("user-agent", _regex_spans(_USER_AGENT)),
    ("email", _regex_spans(EMAIL)),
    ("client-id", _regex_spans(_GA_CLIENT_ID)),
    ("ip", _regex_spans(_IPV4)),
    ("ip", _ipv6_spans),
    ("phone", _regex_spans(_PHONE)),
)
DESCRIPTIONS = {
    "user-agent": "user-agent text",
    "email": "an e-mail address",
    "client-id": "a GA client id",
    "ip": "an IP address",
    "phone": "a phone number",
}


def personal_data_in(text: str) -> str | None:
    """The kind of the first personal data found in `text` (or in it percent-decoded),
    or None."""
    if not _MAYBE_PERSONAL.search(text):
        return None
    for candidate in _decodings(text):
        for kind, spans in _KINDS:
            if spans(candidate):
                return kind
    return None


def redact_personal_data(text: str) -> str:
    """`text` with each piece of personal data replaced by "[kind]" (e.g. "[email]").

    Where only the percent-decoded text holds some, the decoded text is redacted (and
    returned decoded): the placeholders then read as they do elsewhere. Idempotent."""
    if not _MAYBE_PERSONAL.search(text):
        return text
    redacted = _redact(text)
    for _ in range(3):  # an address encoded twice is found after two decodings
        decoded = unquote(redacted)
        if decoded == redacted or personal_data_in_decoded(decoded) is None:
            break
        redacted = _redact(decoded)
    return redacted


def personal_data_in_decoded(text: str) -> str | None:
    for kind, spans in _KINDS:
        if spans(text):
            return kind
    return None


def _decodings(text: str) -> list[str]:
    out = [text]
    for _ in range(3):
        decoded = unquote(out[-1])
        if decoded == out[-1]:
            break
        out.append(decoded)
    return out


def _redact(text: str) -> str:
    for kind, spans in _KINDS:
        found = spans(text)
        for start, end in reversed(found):
            text = f"{text[:start]}[{kind}]{text[end:]}"
    return text
