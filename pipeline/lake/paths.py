"""Where the lake keeps things: the one owner of its paths and of a build's day window.

    lake/events/event_date=YYYY-MM-DD/<name>.parquet        one row per accepted event
    lake/rejected/rejected_date=YYYY-MM-DD/<name>.parquet   payload (redacted) + reason

`event_date` is the event's date in the global `timezone` (the installation's), whatever
its site's own zone: a site's local day overlaps up to three partitions, and a build
reads them all (`BuildWindow.zone_days`). Every other module asks this one for a path, a
date's files or the dates a build reads (`BuildWindow`); none spells a partition name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pipeline.config import Settings

EVENTS = "events"
REJECTED = "rejected"
EVENT_PARTITION = "event_date"
REJECTED_PARTITION = "rejected_date"
# The partitions on each side a site's day may reach into: UTC-12 to UTC+14 is 26 hours.
ZONE_DAYS = 2


@dataclass(frozen=True)
class BuildWindow:
    """The event dates a build of one day reads (offset ranges around it, inclusive).

    - events: a session counts on the date of its first event and is cut
      `max_session_days` after it, so the build reads that many days after its day, and
      one more (the tails of its sessions, and what the cut removes, whatever the
      daylight-saving shifts), and at least as many before (which sessions had already
      started). A transaction_id counts once per site: its repeats are looked for over
      the daily look-back plus the session window before the day (`transaction_days`).
    - touches: the earlier sessions a direct session may take its source from (last
      non-direct attribution over `attribution_days`); none when direct sessions are kept.
    - zone_days: partitions are dated in the global zone, a site's days in its own; two
      zones differ by at most 26 hours, so when any site keeps another zone both ranges
      reach two more partitions on each side.
    """

    max_session_days: int = 3
    transaction_days: int = 6
    attribution_days: int = 30
    zone_days: int = 0
    zones: tuple[str, ...] = ("UTC",)  # the global zone and every site's

    @classmethod
    def from_settings(cls, settings: Settings) -> BuildWindow:
        flows = settings.flows
        keep_direct = settings.attribution.direct_sessions == "keep"
        return cls(
            max_session_days=flows.max_session_days,
            transaction_days=flows.lookback_days + flows.max_session_days,
            attribution_days=0 if keep_direct else settings.attribution.lookback_days,
            zone_days=ZONE_DAYS if _other_zones(settings) else 0,
            zones=tuple(
                sorted({settings.timezone, *(settings.site_timezone(s) for s in settings.sites)})
            ),
        )

    def earliest_start(self, day: date) -> datetime:
        """The earliest instant a session dated `day` can start: the first midnight of
        `day` among the zones (a session counts on its site's local date)."""
        return min(
            datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC) for zone in self.zones
        )

    def events(self, day: date) -> list[date]:
        before = max(self.transaction_days, self.max_session_days) + self.zone_days
        return _days(day, -before, self.max_session_days + 1 + self.zone_days)

    def reach(self, day: date) -> list[date]:
        """The partitions the events of `day`'s own sessions may fall on: from the day
        before (engagement signals may come before a session's first event; a site's day
        may begin earlier still) to a day past the cut. Only those its sessions have
        events on are read."""
        return _days(day, -1 - self.zone_days, self.max_session_days + 1 + self.zone_days)

    def touches(self, day: date) -> list[date]:
        if not self.attribution_days:
            return []
        return _days(day, -self.attribution_days - self.zone_days, self.zone_days)

    def dates(self, day: date) -> list[date]:
        """Every event date the build of `day` reads."""
        return sorted({*self.events(day), *self.touches(day)})

    def all_dates(self, days: list[date]) -> list[date]:
        """Every event date the builds of `days` read, once each, in order."""
        return sorted({read for day in days for read in self.dates(day)})


def _other_zones(settings: Settings) -> bool:
    """Whether a site keeps another zone than the lake's partitions."""
    return any(settings.site_timezone(site) != settings.timezone for site in settings.sites)


def _days(day: date, first: int, last: int) -> list[date]:
    return [day + timedelta(days=shift) for shift in range(first, last + 1)]


@dataclass(frozen=True)
class LakeLayout:
    root: Path

    @property
    def events_dir(self) -> Path:
        return self.root / EVENTS

    def partition_dir(self, event_date: date | str) -> Path:
        return self.events_dir / partition_name(event_date)

    def event_file(self, event_date: date | str, name: str) -> Path:
        return self.partition_dir(event_date) / f"{name}.parquet"

    def rejected_file(self, rejected_date: date | str, name: str) -> Path:
        day = _iso(rejected_date)
        return self.root / REJECTED / f"{REJECTED_PARTITION}={day}" / f"{name}.parquet"

    def files_on(self, event_date: date | str) -> list[Path]:
        return sorted(self.partition_dir(event_date).glob("*.parquet"))

    def event_files(self) -> list[Path]:
        return sorted(self.events_dir.glob(f"{EVENT_PARTITION}=*/*.parquet"))

    def event_dates(self) -> list[str]:
        """The dates (YYYY-MM-DD) that have a partition directory."""
        prefix = f"{EVENT_PARTITION}="
        return sorted(path.name.removeprefix(prefix) for path in self.events_dir.glob(f"{prefix}*"))

    def files_on_dates(self, dates: list[date]) -> list[Path]:
        return [path for read in dates for path in self.files_on(read)]


def partition_name(event_date: date | str) -> str:
    return f"{EVENT_PARTITION}={_iso(event_date)}"


def _iso(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()
