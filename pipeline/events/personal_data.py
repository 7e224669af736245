"""What personal data looks like in text: e-mail addresses and IP addresses.

Here, not in pipeline.privacy, because validation refuses ids that are personal data
(check_pseudonymous_ids) and the events room builds on no other; privacy's redaction
uses the same pattern.
"""

from __future__ import annotations

import ipaddress
import re

# Local part: RFC 5322 atom characters, at most 64 of them (the RFC's limit, which also
# keeps the search linear). The "@" may still be percent-encoded when the URL was
# encoded twice. The top-level domain starts with a letter, so that package versions
# such as "react@18.2.0" are not taken for addresses.
EMAIL = re.compile(
    r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}(?:@|%40)[\w-]{1,63}(?:\.[\w-]{1,63})*\.[^\W\d_][\w-]+"
)


def contains_email(text: str) -> bool:
    return EMAIL.search(text) is not None


def is_ip_address(text: str) -> bool:
    """The whole text is one IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text.strip())
    except ValueError:
        return False
    return True
