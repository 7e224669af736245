"""Pseudonymous visitor ids: what the collector keeps instead of raw identifiers.

- Cookie-free visitors: keyed hash of (day's salt, site, IP, user agent). The IP and the
  user agent are used here and dropped; only the hash travels on.
- Stable ids (GA4 client_id, user_id): keyed hash with a persistent per-site key, derived
  from one secret file, so the same client maps to the same visitor every day.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from functools import cache
from pathlib import Path

from pipeline.privacy.hashing import keyed_hash
from pipeline.privacy.secrets import read_or_create_secret


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
