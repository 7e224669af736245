"""Event time: epoch microseconds in UTC, RFC 3339 parsing and the accepted window."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.config import ValidationSettings
from pipeline.events.reasons import Reason, Rejected

MICROS = 1_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Earliest and latest instants accepted at all: before 2000 is surely a broken clock.
MIN_EVENT_MICROS = int((datetime(2000, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()) * MICROS
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}"
    r"(?P<fraction>\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)


@dataclass(frozen=True)
class TimestampWindow:
    """How far from `now` an event may be. The collector bounds the past; the consumer
    and `import` carry history and bound only the future (clock skew)."""

    max_future: timedelta
    max_past: timedelta | None = None


def collector_window(settings: ValidationSettings) -> TimestampWindow:
    return TimestampWindow(
        max_future=timedelta(minutes=settings.max_future_skew_minutes),
        max_past=timedelta(hours=settings.collector_max_past_hours),
    )


def history_window(settings: ValidationSettings) -> TimestampWindow:
    """Back ends, the consumer and `import` carry history: any past date is fine."""
    return TimestampWindow(max_future=timedelta(minutes=settings.max_future_skew_minutes))


def parse_event_ts(value: object) -> int:
    """RFC 3339 with an offset, or integer epoch microseconds -> epoch microseconds (UTC)."""
    if isinstance(value, bool):
        raise Rejected(Reason.BAD_TIMESTAMP, "event_ts must be RFC 3339 or epoch microseconds")
    if isinstance(value, int):
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise Rejected(Reason.BAD_TIMESTAMP, "event_ts must be RFC 3339 or epoch microseconds")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise Rejected(
            Reason.BAD_TIMESTAMP,
            "event_ts must be RFC 3339 with an offset, e.g. 2026-11-01T10:00:00Z",
        )
    text = value.upper()  # RFC 3339 allows "t" and "z"; fromisoformat does not
    fraction = match.group("fraction")
    if fraction and len(fraction) > 7:  # fromisoformat takes at most microseconds
        text = text[: match.start("fraction") + 7] + text[match.end("fraction") :]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(Reason.BAD_TIMESTAMP, f"event_ts {value!r} is not a valid date") from None
    return to_micros(parsed)


def format_event_ts(micros: int) -> str:
    """Epoch microseconds -> RFC 3339 in UTC with microseconds, the canonical spelling."""
    return (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_micros() -> int:
    return to_micros(datetime.now(UTC))


def to_micros(moment: datetime) -> int:
    """An aware datetime -> epoch microseconds, exactly (no float on the way)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * MICROS + delta.microseconds
