"""Daily random salts for cookie-free visitor ids, shared by every collector instance.

- One file per day (the global `timezone`, for every site: a site with its own zone
  still gets a new salt at the installation's midnight, as Plausible rotates all its
  sites' salts together) in a directory that all collectors share. The
  first instance to need a day's salt creates it atomically (write + hard link), so
  concurrent instances agree on one salt without a lock service.
- The previous day's salt stays available only for `keep_previous` after midnight, so
  sessions crossing midnight keep their visitor id. Then it and anything older is
  overwritten and deleted: nobody, not even the operator, can link visitors across days.
  Every command that touches salts (the collector, on a timer too; produce, import,
  consume and the flows, at start) destroys expired ones and the staging copies left by
  a killed process; a salt file that is empty or open to others is refused.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import Settings
from pipeline.privacy.secrets import (
    read_or_create_secret,
    read_secret,
    remove_abandoned_staging,
    shred,
)

SALT_BYTES = 32
HOUSEKEEPING_EVERY_S = 60.0  # destroying expired salts needs no per-event precision


class SaltStore:
    def __init__(self, directory: Path, timezone: str, keep_previous: timedelta) -> None:
        self.directory = directory
        self.zone = ZoneInfo(timezone)
        self.keep_previous = keep_previous
        self._cache: dict[date, bytes | None] = {}
        self._next_housekeeping = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SaltStore:
        # Yesterday's salt is kept one session timeout after midnight.
        keep = timedelta(minutes=settings.sessionization.timeout_minutes)
        return cls(settings.salt_dir, settings.timezone, keep_previous=keep)

    def check(self, now: datetime) -> None:
        """At start: what has expired destroyed, and every salt still kept readable by
        its owner only and not empty (SecretFileError with the fix otherwise)."""
        self.destroy_expired_at(now)
        for path in sorted(self.directory.glob("salt-*")) if self.directory.is_dir() else []:
            if _day_of(path) is not None:
                read_secret(path)

    def salts(self, now: datetime) -> tuple[bytes, bytes | None]:
        """Today's salt, and yesterday's while sessions may still cross midnight."""
        local = now.astimezone(self.zone)
        today = local.date()
        midnight = datetime.combine(today, datetime.min.time(), self.zone)
        keep_yesterday = local - midnight < self.keep_previous
        current = self._cache.get(today)
        if current is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            yesterday = today - timedelta(days=1)
            current = self._get_or_create(today)
            self._cache = {today: current, yesterday: self._read(yesterday)}
        yesterday = today - timedelta(days=1)
        window_just_closed = not keep_yesterday and yesterday in self._cache
        if window_just_closed or time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY_S
            self.destroy_expired(today, keep_yesterday)
        if not keep_yesterday:
            self._cache.pop(yesterday, None)  # forgotten in memory too
        return current, self._cache.get(yesterday)

    def destroy_expired_at(self, now: datetime) -> None:
        """Destroy what has expired at `now`, on disk and in memory, without creating a
        salt: the collector calls it on a timer, so salts go on time even when no request
        comes to ask for one."""
        local = now.astimezone(self.zone)
        today = local.date()
        midnight = datetime.combine(today, datetime.min.time(), self.zone)
        keep_yesterday = local - midnight < self.keep_previous
        if self.directory.is_dir():
            self.destroy_expired(today, keep_yesterday)
        oldest_kept = today - timedelta(days=1 if keep_yesterday else 0)
        self._cache = {day: salt for day, salt in self._cache.items() if day >= oldest_kept}

    def destroy_expired(self, today: date, keep_yesterday: bool) -> None:
        oldest_kept = today - timedelta(days=1 if keep_yesterday else 0)
        remove_abandoned_staging(self.directory, "salt-")
        for path in self.directory.glob("salt-*"):
            day = _day_of(path)
            if day is not None and day < oldest_kept:
                shred(path)

    def _path(self, day: date) -> Path:
        return self.directory / f"salt-{day.isoformat()}"

    def _read(self, day: date) -> bytes | None:
        return read_secret(self._path(day))

    def _get_or_create(self, day: date) -> bytes:
        return read_or_create_secret(self._path(day), SALT_BYTES)


def _day_of(path: Path) -> date | None:
    try:
        return date.fromisoformat(path.name.removeprefix("salt-"))
    except ValueError:
        return None


def tidy_secret_files(settings: Settings, now: datetime) -> None:
    """What each command that touches salts does at start, so that salts die on time even
    while no collector runs: expired salts shredded, and the staging copies of salts and
    of the site key that a killed process left removed."""
    SaltStore.from_settings(settings).destroy_expired_at(now)
    key = settings.site_key_file
    remove_abandoned_staging(key.parent, key.name)
