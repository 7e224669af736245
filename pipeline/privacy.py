"""Pseudonymous ids and country lookup: what the collector keeps instead of raw identifiers.

- Cookie-free visitors: keyed hash of (day's salt, site, IP, user agent). The IP and the
  user agent are used here and dropped; only the hash travels on.
- Stable ids (GA4 client_id, user_id): keyed hash with a persistent per-site key, derived
  from one secret file, so the same client maps to the same visitor every day.
- Country: from a trusted proxy header, or a user-supplied GeoIP database; never stored IP.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import maxminddb

from pipeline.secret_files import read_or_create_secret
from pipeline.urls import redact_emails
from pipeline.validation import country_codes

ID_HEX_CHARS = 32  # 128 bits: collision-free in practice, and not the whole digest
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6_CANDIDATE = re.compile(r"[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:]*")


def redact_identifiers(text: str) -> str:
    """For text kept only for diagnosis (rejected payloads): e-mails and IPs removed."""
    return _IPV6_CANDIDATE.sub(_ipv6_or_same, _IPV4.sub("[ip]", redact_emails(text)))


def _ipv6_or_same(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group(0))
    except ValueError:
        return match.group(0)  # e.g. a clock time "10:00:00"
    return "[ip]"


def keyed_hash(key: bytes, *parts: str) -> str:
    # Length-prefixed parts: ("a", "b") and ("a\0b",) must never hash alike.
    message = "".join(f"{len(part)}:{part}" for part in parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:ID_HEX_CHARS]


class SiteKeys:
    """Per-site keys derived from one persistent secret (created once, mode 0600)."""

    def __init__(self, secret_file: Path) -> None:
        self._secret = read_or_create_secret(secret_file)

    @cache  # noqa: B019 - one instance per process; sites are few
    def key_for(self, site_id: str) -> bytes:
        return hmac.new(self._secret, f"site-key\0{site_id}".encode(), hashlib.sha256).digest()

    def stable_id(self, site_id: str, kind: str, value: str) -> str:
        return keyed_hash(self.key_for(site_id), kind, value)


class RecentVisitors:
    """Visitor ids seen in the last inactivity timeout, so that after midnight a visitor
    still in a session keeps yesterday's id instead of starting a new session. Bounded:
    the oldest ids are forgotten first. Local to this collector instance."""

    def __init__(self, timeout_micros: int, max_entries: int = 200_000) -> None:
        self.timeout_micros = timeout_micros
        self.max_entries = max_entries
        self._last_seen: OrderedDict[str, int] = OrderedDict()

    def cookie_free_id(
        self, salts: tuple[bytes, bytes | None], site_id: str, ip: str, user_agent: str, now: int
    ) -> str:
        today_salt, yesterday_salt = salts
        visitor = keyed_hash(today_salt, site_id, ip, user_agent)
        if yesterday_salt is not None and visitor not in self._last_seen:
            earlier = keyed_hash(yesterday_salt, site_id, ip, user_agent)
            if now - self._last_seen.get(earlier, -self.timeout_micros - 1) <= self.timeout_micros:
                visitor = earlier
        self._remember(visitor, now)
        return visitor

    def _remember(self, visitor: str, now: int) -> None:
        self._last_seen[visitor] = now
        self._last_seen.move_to_end(visitor)
        while len(self._last_seen) > self.max_entries:
            self._last_seen.popitem(last=False)


class CountryResolver:
    def __init__(self, header: str | None, geoip_database: Path | None) -> None:
        self.header = header.lower() if header else None
        self._reader = maxminddb.open_database(str(geoip_database)) if geoip_database else None

    def country(self, headers: Mapping[str, str], ip: str) -> str | None:
        if self.header is not None:
            value = headers.get(self.header, "").strip().upper()
            return value if value in country_codes() else None
        if self._reader is not None:
            record = self._reader.get(ip)
            if isinstance(record, dict):
                country = record.get("country")
                if isinstance(country, dict):
                    code = country.get("iso_code")
                    return code if isinstance(code, str) and code in country_codes() else None
        return None
