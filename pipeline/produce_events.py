"""`sessionflow produce`: validated canonical events from a file or the generator, into Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.dialects import decode_json
from pipeline.producer import EventProducer
from pipeline.validation import (
    Rejected,
    history_window,
    now_micros,
    parse_event_ts,
    validate_event,
)

PROGRESS_EVERY = 50_000
MAX_LISTED_REJECTS = 20

Say = Callable[[str], None]


@dataclass
class ProduceReport:
    produced: int = 0
    rejected: int = 0
    reject_lines: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"produced {self.produced} events; rejected {self.rejected}"


def produce_file(settings: Settings, path: Path, say: Say) -> ProduceReport:
    return _produce(settings, _numbered_json_lines(path), say)


def produce_synthetic(
    settings: Settings, days: int, events_per_day: int, seed: int, say: Say
) -> ProduceReport:
    from pipeline.generator import GeneratorConfig, generate_events

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
    return _produce(settings, ((n, e) for n, e in numbered if _not_future(e, now)), say)


def _produce(settings: Settings, numbered: Iterable[tuple[int, Any]], say: Say) -> ProduceReport:
    window = history_window(settings.validation)
    report = ProduceReport()
    with EventProducer(settings.kafka) as producer:
        for line_number, raw in numbered:
            try:
                if isinstance(raw, Rejected):
                    raise raw
                producer.send(validate_event(raw, now_micros=now_micros(), window=window))
                report.produced += 1
            except Rejected as rejected:
                report.rejected += 1
                if report.rejected <= MAX_LISTED_REJECTS:
                    say(f"line {line_number}: {rejected.line()}")
            if (report.produced + report.rejected) % PROGRESS_EVERY == 0:
                say(f"... {report.produced} produced, {report.rejected} rejected")
    if report.rejected > MAX_LISTED_REJECTS:
        say(f"... and {report.rejected - MAX_LISTED_REJECTS} more rejected lines")
    return report


def _numbered_json_lines(path: Path) -> Iterator[tuple[int, object]]:
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_number, decode_json(line)
            except Rejected as rejected:
                yield line_number, rejected


def _not_future(event: dict[str, Any], now: int) -> bool:
    return parse_event_ts(event["event_ts"]) <= now
