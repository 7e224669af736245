"""Python SDK that produces canonical events to Kafka.

- Idempotent, acks=all, compressed, batched (linger): the broker keeps each event once,
  in order per partition, even when the producer retries.
- The message key is ``<site_id>/<visitor_id>``, so every event of one visitor on one site
  lands in one partition and one consumer sees that visitor's whole stream.
- Delivery errors are collected from the send futures and raised from ``flush()`` and
  ``close()``: an event is either acknowledged by the broker or reported, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from pipeline.config import KafkaSettings
from pipeline.errors import SessionflowError


class DeliveryError(SessionflowError):
    """The broker did not acknowledge some events."""


def partition_key(event: Mapping[str, Any]) -> bytes:
    return f"{event['site_id']}/{event['visitor_id']}".encode()


def encode_event(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


class EventProducer:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str | None = None,
        *,
        compression: str = "gzip",
        linger_ms: int = 20,
        batch_size: int = 256 * 1024,
        max_block_ms: int = 60_000,
        bootstrap_timeout_ms: int = 30_000,
    ) -> None:
        self.topic = topic or kafka.events_topic
        self._producer = KafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            client_id="sessionflow-producer",
            acks="all",
            enable_idempotence=True,
            compression_type=compression,
            linger_ms=linger_ms,
            batch_size=batch_size,
            max_block_ms=max_block_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        self._errors: list[BaseException] = []
        self.sent = 0

    def send(
        self,
        event: Mapping[str, Any],
        on_delivered: Callable[[], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queue one event. Without `on_failed`, a delivery failure is raised by flush()."""
        try:
            future = self._producer.send(
                self.topic, key=partition_key(event), value=encode_event(event)
            )
        except KafkaTimeoutError:
            raise DeliveryError(
                f"Kafka gave no metadata for topic {self.topic} in time: is the broker up and "
                "the topic created (`sessionflow topics`)?"
            ) from None
        if on_delivered is not None:
            future.add_callback(lambda _metadata: on_delivered())
        future.add_errback(on_failed or self._errors.append)
        self.sent += 1

    def send_all(self, events: Iterable[Mapping[str, Any]]) -> int:
        count = 0
        for event in events:
            self.send(event)
            count += 1
        return count

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)
        if self._errors:
            failed, first = len(self._errors), self._errors[0]
            self._errors.clear()
            raise DeliveryError(f"{failed} events were not delivered to {self.topic}: {first}")

    def close(self, timeout_s: float | None = None) -> None:
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
