"""A Kafka sink for collector tests without a broker."""

from __future__ import annotations

from pipeline.collector.kafka_sink import KafkaSink
from pipeline.config import Settings
from pipeline.events.validation import Event


class RecordingSink(KafkaSink):
    """Records every event offered; never started, so no thread, no producer, no Kafka."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings.kafka, 10_000, settings.data_dir / "spill", settings.collector.buffer_max_bytes
        )
        self.offered: list[Event] = []

    def offer(self, events: list[Event]) -> bool:
        self.offered.extend(events)
        return True
