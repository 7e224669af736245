"""Redaction of identifiers in free text: e-mail addresses and IP addresses.

For URLs (the collector scrubs them) and for text kept only for diagnosis (rejected
payloads in the dead-letter topic and `lake/rejected/`).
"""

from __future__ import annotations

import ipaddress
import re

from pipeline.events.personal_data import EMAIL as _EMAIL

EMAIL_PLACEHOLDER = "[email]"
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*")


def redact_emails(text: str) -> str:
    return _EMAIL.sub(EMAIL_PLACEHOLDER, text)


def redact_identifiers(text: str) -> str:
    """For text kept only for diagnosis (rejected payloads): e-mails and IPs removed."""
    return _IPV6_CANDIDATE.sub(_ipv6_or_same, _IPV4.sub("[ip]", redact_emails(text)))


def _ipv6_or_same(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)  # e.g. a clock time "10:00:00"
    return "[ip]"
