"""`sessionflow produce`: validated canonical events from a file or the generator, into Kafka."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.events.decode import decode_json
from pipeline.events.reasons import MAX_LISTED_REJECTS, Rejected
from pipeline.events.site_rules import SiteRules
from pipeline.events.timestamps import history_window
from pipeline.events.validation import require_object
from pipeline.kafka.producer import EventProducer

Say = Callable[[str], None]
Progress = Callable[[int], None]  # so many more lines (events) handled
# Events told to `progress` at a time: a call per event would cost more than the display.
PROGRESS_EVERY = 1_000


def _unheard(count: int) -> None:
    pass


@dataclass
class ProduceReport:
    produced: int = 0
    rejected: int = 0
    reject_lines: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"produced {self.produced} events; rejected {self.rejected}"


def produce_file(
    settings: Settings, path: Path, say: Say, progress: Progress = _unheard
) -> ProduceReport:
    """Every line of `path` (blank ones too) is counted to `progress` as it is handled."""
    return produce_events(settings, _numbered_json_lines(path, progress), say, progress)


def produce_events(
    settings: Settings,
    numbered: Iterable[tuple[int, Any]],
    say: Say,
    progress: Progress = _unheard,
) -> ProduceReport:
    """(line number, event or JSON line) pairs into Kafka, validated and their URLs
    scrubbed by the SDK; bad ones are listed. `progress` hears of them as they are
    handled, PROGRESS_EVERY at a time."""
    window = history_window(settings.validation)
    report = ProduceReport()
    rules = SiteRules.from_settings(settings)
    with EventProducer(settings.kafka, window=window, rules=rules) as producer:
        for line_number, raw in numbered:
            try:
                event = decode_json(raw) if isinstance(raw, bytes) else raw
                producer.send(require_object(event))
                report.produced += 1
            except Rejected as rejected:
                report.rejected += 1
                if report.rejected <= MAX_LISTED_REJECTS:
                    say(f"line {line_number}: {rejected.line()}")
            if (report.produced + report.rejected) % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
        progress((report.produced + report.rejected) % PROGRESS_EVERY)
    if report.rejected > MAX_LISTED_REJECTS:
        say(f"... and {report.rejected - MAX_LISTED_REJECTS} more rejected lines")
    return report


def _numbered_json_lines(path: Path, progress: Progress) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                yield line_number, line
            else:
                progress(1)  # a blank line is handled too: the count reaches the file's lines
