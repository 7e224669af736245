"""Where the lake keeps things: the one owner of its paths and of a build's day window.

    lake/events/event_date=YYYY-MM-DD/<name>.parquet        one row per accepted event
    lake/rejected/rejected_date=YYYY-MM-DD/<name>.parquet   payload (redacted) + reason

`event_date` is the event's date in the property time zone. Every other module asks this
one for a path, a date's files or the dates a build reads; none spells a partition name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

EVENTS = "events"
REJECTED = "rejected"
EVENT_PARTITION = "event_date"
REJECTED_PARTITION = "rejected_date"
# A session counts on the date of its first event and may cross midnight, so a day's
# build reads the partitions of the day before (to see which sessions had already
# started) and of the day after (the tails of the day's sessions).
BUILD_WINDOW = (-1, 0, 1)


def build_window(day: date) -> list[date]:
    """The event dates a build of `day` reads."""
    return [day + timedelta(days=shift) for shift in BUILD_WINDOW]


def build_windows(days: list[date]) -> list[date]:
    """Every event date the builds of `days` read, once each, in order."""
    return sorted({read for day in days for read in build_window(day)})


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

    def files_for_build(self, day: date) -> list[Path]:
        """The lake files a build of `day` reads: its window's partitions."""
        return [path for read in build_window(day) for path in self.files_on(read)]


def partition_name(event_date: date | str) -> str:
    return f"{EVENT_PARTITION}={_iso(event_date)}"


def _iso(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()
