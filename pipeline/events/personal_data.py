"""What personal data looks like in text, and the one rule for it.

Kinds: e-mail addresses, IP addresses (v4 and v6), phone numbers (international "+" or
"00" form, and North American grouping), GA client ids (`1234567890.1700000000`,
`GA1.1.1234567890.1700000000`) and user-agent text (`Mozilla/5.0`, or any
`product/version (comment; ...)`). Identifiers and names are refused when they hold one
(validation: not_pseudonymous); free text (URLs, campaign fields, browser and OS names,
rejection details and payloads) has it redacted to a placeholder naming the kind. Text is
searched as sent, percent-decoded, with invisible characters stripped and in its NFKC form
(fullwidth U+FF20 and U+FF0E, the ideographic full stop U+3002 read as "@" and "."), since an
address may arrive in any of these; where only such a form holds personal data, free text
keeps that form, redacted.

Control and invisible characters are stripped from every text field before any of this
(they could hide an address from the patterns, or reach an operator's terminal): every
character of Unicode category Cc or Cf (C0 and C1 controls, bidi controls, zero-width
characters, the soft hyphen, tag characters, ...), Unicode's Default_Ignorable_Code_Point
set (the combining grapheme joiner U+034F, Hangul fillers, variation selectors, ...) and
the line and paragraph separators U+2028/U+2029. Emoji lose their zero-width joiners,
variation selectors and tag sequences (a family emoji reads as its members, a subdivision
flag as a black flag): the price of a set that leaves nothing invisible.

Here, not in pipeline.privacy, because validation applies it and the events room builds on
no other; privacy's redaction of URLs and rejected payloads calls the same functions.
The patterns are ASCII-only (digits are 0-9), so that `MAYBE_PERSONAL`, an RE2 pattern
the bulk decoder runs on Arrow columns, finds every text these patterns could.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
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
# "+" and 7 to 15 digits (E.164), with the separators people type; the same with the
# "00" international prefix and a separator after the country code; or 3-3-4 grouping.
# A bare run of digits is not taken for a phone number: order numbers look the same.
_PHONE = re.compile(
    r"(?<![0-9+])\+ ?[0-9](?:[ .()/-]{0,2}[0-9]){6,14}(?![0-9])"
    r"|(?<![0-9])\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}(?![0-9])"
    r"|(?<![0-9+])00[1-9][0-9]{0,2}[ .()/-]{1,2}[0-9](?:[ .()/-]{0,2}[0-9]){4,12}(?![0-9])"
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

# The control and invisible characters stripped from text (see the docstring), as code
# point ranges, generated from the Unicode database this Python carries: every Cc and Cf
# character, Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt: the
# entries that are not Cf are listed here) and the line and paragraph separators.
# CONTROL_CHARACTER is the class in RE2 syntax (pyarrow.compute).
_DEFAULT_IGNORABLE = (
    (0x34F, 0x34F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2028, 0x2029),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Text a compatibility character could spell in ASCII: the ideographic full stops that
# IDNA reads as dots, then whatever NFKC makes of the text.
_DOTS = {0x3002: ".", 0xFF61: "."}


def _ranges(code_points: list[int]) -> tuple[tuple[int, int], ...]:
    ranges: list[tuple[int, int]] = []
    for c in code_points:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return tuple(ranges)


def _lookalike(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_DOTS)


def _unicode_classes() -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(invisible ranges, ranges of characters whose compatibility form holds ASCII)."""
    invisible = {c for lo, hi in _DEFAULT_IGNORABLE for c in range(lo, hi + 1)}
    lookalike = []
    # Cf and compatibility characters lie in planes 0 and 1 and the tag plane (above).
    for c in range(0x20000):
        ch = chr(c)
        if unicodedata.category(ch) in ("Cc", "Cf"):
            invisible.add(c)
        if c >= 0x80 and (unicodedata.decomposition(ch) or c in _DOTS):
            form = _lookalike(ch)
            if form != ch and any(x < "\x80" for x in form):
                lookalike.append(c)
    return _ranges(sorted(invisible)), _ranges(lookalike)


_CONTROL_RANGES, _LOOKALIKE_RANGES = _unicode_classes()


def _re2_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(f"\\x{{{lo:x}}}-\\x{{{hi:x}}}" for lo, hi in ranges) + "]"


def _python_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "[" + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges) + "]"


CONTROL_CHARACTER = _re2_class(_CONTROL_RANGES)
_CONTROL = re.compile(_python_class(_CONTROL_RANGES))

# A cheap test that every text holding personal data passes, together with
# CONTROL_CHARACTER (invisible characters are stripped before matching), and most ids do
# not: an "@", a percent escape, digits around a dot, space, dash or parenthesis, two
# colons, a "+" before a digit, a "/" before a digit, or a compatibility character whose
# NFKC form holds ASCII (matched in that form). RE2 syntax, for pyarrow.compute too.
_MAYBE_PERSONAL_ASCII = r"@|%[0-9A-Fa-f]{2}|[0-9][ .()-]{1,2}[0-9]|:.*:|\+ ?[0-9]|/[0-9]"
MAYBE_PERSONAL = _MAYBE_PERSONAL_ASCII + "|" + _re2_class(_LOOKALIKE_RANGES)
_MAYBE_PERSONAL = re.compile(
    _MAYBE_PERSONAL_ASCII
    + "|"
    + _python_class(_LOOKALIKE_RANGES)
    + "|"
    + _python_class(_CONTROL_RANGES)
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
    return next(filter(None, map(personal_data_in_decoded, _decodings(text))), None)


def redact_personal_data(text: str) -> str:
    """`text` with each piece of personal data replaced by "[kind]" (e.g. "[email]").

    Where only another form of the text holds some (percent-decoded, invisible characters
    stripped, NFKC), that form is redacted (and returned): the placeholders then read as
    they do elsewhere. Idempotent."""
    if not _MAYBE_PERSONAL.search(text):
        return text
    redacted = _redact(strip_control_characters(text))
    for _ in range(4):  # an address encoded twice is found after two decodings
        form = next((f for f in _decodings(redacted)[1:] if personal_data_in_decoded(f)), None)
        if form is None:
            break
        redacted = _redact(form)
    return redacted


def personal_data_in_decoded(text: str) -> str | None:
    for kind, spans in _KINDS:
        if spans(text):
            return kind
    return None


def _decodings(text: str) -> list[str]:
    """`text`, then the forms personal data is also looked for in: percent-decoded (up to
    three times), each with invisible characters stripped, then in NFKC form."""
    out = [text]
    current = text
    for _ in range(4):
        for form in (strip_control_characters(current), _lookalike(current)):
            if form not in out:
                out.append(form)
        stripped = _lookalike(strip_control_characters(current))
        if stripped not in out:
            out.append(stripped)
        decoded = unquote(current)
        if decoded == current:
            break
        out.append(decoded)
        current = decoded
    return out


def _redact(text: str) -> str:
    for kind, spans in _KINDS:
        found = spans(text)
        for start, end in reversed(found):
            text = f"{text[:start]}[{kind}]{text[end:]}"
    return text
