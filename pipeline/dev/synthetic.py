"""`sessionflow produce --synthetic`: generated traffic of the last days, into Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config import Settings
from pipeline.dev.generator import GeneratorConfig, generate_events
from pipeline.events.timestamps import now_micros, parse_event_ts
from pipeline.kafka.produce import ProduceReport, Progress, Say, produce_events


def produce_synthetic(
    settings: Settings, days: int, events_per_day: int, seed: int, say: Say, progress: Progress
) -> ProduceReport:
    today = datetime.now(UTC).date()
    config = GeneratorConfig(
        days=days,
        start=today - timedelta(days=days - 1),
        seed=seed,
        events_per_day=events_per_day,
        sites=tuple(settings.sites),
        currency=settings.currency,
    )
    # Synthetic "today" may run into the future of the wall clock: keep what has happened.
    now = now_micros()
    numbered = enumerate(generate_events(config), start=1)
    kept = ((n, e) for n, e in numbered if _not_future(e, now))
    return produce_events(settings, kept, say, progress)


def _not_future(event: dict[str, Any], now: int) -> bool:
    return parse_event_ts(event["event_ts"]) <= now
