"""Python SDK that produces canonical events to Kafka.

- Idempotent, acks=all, compressed, batched (linger): the broker keeps each event once,
  in order per partition, even when the producer retries.
- The message key is ``<site_id>/<visitor_id>``, so every event of one visitor on one site
  lands in one partition and one consumer sees that visitor's whole stream.
- Validation and privacy before Kafka, as in the collector: each
  event is validated (a back end's window: any past date) and its page URLs scrubbed
  (utm_* kept, other query parameters and e-mails dropped; pipeline.privacy.urls). An
  event that fails raises `Rejected` with its named reason, for example an unknown
  field, or a visitor or user id that is an e-mail or IP address (not_pseudonymous).
  The caller's dicts are not changed. The collector, whose events passed the same steps,
  turns this off (`events_checked`).
- Delivery errors are collected from the send futures and raised from ``flush()`` and
  ``close()``: an event is either acknowledged by the broker or reported, never dropped.

Speed: events are encoded with orjson, and keys go to partitions through kafka-python's
own murmur2 rule, rewritten to be faster and memoised per key (a visitor's events repeat
their key), so the SDK costs little on top of kafka-python's own send().
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any, TypedDict

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.partitioner import DefaultPartitioner

from pipeline.config import KafkaSettings, ValidationSettings
from pipeline.errors import SessionflowError
from pipeline.events.site_rules import AUTHENTICATED, SiteRules
from pipeline.events.timestamps import TimestampWindow, history_window, now_micros
from pipeline.events.validation import Event, validate_event
from pipeline.kafka.client import client_options
from pipeline.privacy.urls import scrub_page_fields


class DeliveryError(SessionflowError):
    """The broker did not acknowledge some events."""


def partition_key(event: Mapping[str, Any]) -> bytes:
    return f"{event['site_id']}/{event['visitor_id']}".encode()


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in the event's order."""
    try:
        if not any(_not_finite(value) for value in event.values()):
            return orjson.dumps(event)
    except TypeError:
        pass
    # What orjson refuses (integers past 64 bits, a Mapping that is not a dict) or would
    # change (it writes NaN and Infinity as null, so the consumer could not reject them as
    # value_not_finite): the same JSON, spelled by the standard library.
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def _not_finite(value: object) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


_MURMUR2_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's and kafka-python's, bit for bit), reading whole
    32-bit words with struct: the one pure-Python hash on every keyed send."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length // 4
    for word in struct.unpack_from(f"<{words}I", data):
        k = (word * _MURMUR2_M) & _MASK32
        k ^= k >> 24
        k = (k * _MURMUR2_M) & _MASK32
        h = ((h * _MURMUR2_M) & _MASK32) ^ k
    tail = data[words * 4 :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * _MURMUR2_M) & _MASK32
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _MASK32
    return h ^ (h >> 15)


@lru_cache(maxsize=65_536)  # keys are <site>/<visitor>: a visitor's events repeat theirs
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


class VisitorPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """kafka-python's DefaultPartitioner (murmur2 of the key over all partitions, so a
    visitor's partition is what any Kafka client picks), with the hash memoised."""

    def partition(
        self,
        topic: str,
        key: object,
        serialized_key: bytes | None,
        value: object,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:
            partition: int = super().partition(
                topic, key, serialized_key, value, serialized_value, cluster
            )
            return partition
        partitions = cluster.partitions_for_topic(topic)
        if partitions is None:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        ordered: list[int] = sorted(partitions)
        return ordered[_key_hash(serialized_key) % len(ordered)]


class ProducerOptions(TypedDict, total=False):
    """EventProducer's keyword options, for callers that keep theirs in one place."""

    compression: str
    linger_ms: int
    batch_size: int
    max_block_ms: int
    bootstrap_timeout_ms: int


def producer_settings(
    kafka: KafkaSettings,
    *,
    compression: str,
    linger_ms: int,
    batch_size: int,
    max_block_ms: int,
    bootstrap_timeout_ms: int,
) -> dict[str, Any]:
    """The KafkaProducer settings of an EventProducer with these options (its partitioner
    aside): benchmarks give raw kafka-python exactly these."""
    return {
        **client_options(kafka),
        "client_id": "sessionflow-producer",
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": compression,
        "linger_ms": linger_ms,
        "batch_size": batch_size,
        "max_block_ms": max_block_ms,
        "bootstrap_timeout_ms": bootstrap_timeout_ms,
    }


class EventProducer:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str | None = None,
        *,
        compression: str = "lz4",  # measured: bench row 1c
        linger_ms: int = 20,
        batch_size: int = 256 * 1024,
        max_block_ms: int = 60_000,
        bootstrap_timeout_ms: int = 30_000,
        window: TimestampWindow | None = None,
        rules: SiteRules | None = None,
        events_checked: bool = False,
    ) -> None:
        self.topic = topic or kafka.events_topic
        self._window = window or history_window(ValidationSettings())
        self._rules = rules  # the sites' settings (SiteRules.from_settings); None: defaults
        self._events_checked = events_checked
        settings = producer_settings(
            kafka,
            compression=compression,
            linger_ms=linger_ms,
            batch_size=batch_size,
            max_block_ms=max_block_ms,
            bootstrap_timeout_ms=bootstrap_timeout_ms,
        )
        self._producer = KafkaProducer(**settings, partitioner=VisitorPartitioner())
        self._errors: list[BaseException] = []
        self.sent = 0

    def send(
        self,
        event: Mapping[str, Any],
        on_delivered: Callable[[], None] | None = None,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queue one event. Without `on_failed`, a delivery failure is raised by flush().
        Raises `Rejected` for an invalid event (see the module's notes)."""
        if not self._events_checked:
            event = self.checked(event)
        try:
            future = self._producer.send(
                self.topic, key=partition_key(event), value=encode_event(event)
            )
        except KafkaTimeoutError:
            raise self._no_metadata() from None
        if on_delivered is not None:
            future.add_callback(lambda _metadata: on_delivered())
        future.add_errback(on_failed or self._errors.append)
        self.sent += 1

    def send_all(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Queue every event; failures are raised by flush(). The loop is send()'s, with
        the per-event lookups hoisted out of it. An event `send` refuses raises `Rejected`
        there, the events before it queued."""
        send, topic, errback = self._producer.send, self.topic, self._errors.append
        count = 0
        try:
            for given in events:
                event = given if self._events_checked else self.checked(given)
                key = f"{event['site_id']}/{event['visitor_id']}".encode()  # partition_key
                send(topic, key=key, value=encode_event(event)).add_errback(errback)
                count += 1
        except KafkaTimeoutError:
            raise self._no_metadata() from None
        finally:
            self.sent += count
        return count

    def checked(self, event: Mapping[str, Any]) -> Event:
        """A copy of `event`, validated and its URLs scrubbed, or `Rejected`. Its `trust`
        is the caller's (a back end relaying browser events says "anonymous"), else
        "authenticated": whoever holds Kafka access is."""
        valid = validate_event(
            dict(event), now_micros=now_micros(), window=self._window, rules=self._rules
        )
        valid.setdefault("trust", AUTHENTICATED)
        return scrub_page_fields(valid)

    def _no_metadata(self) -> DeliveryError:
        return DeliveryError(
            f"Kafka gave no metadata for topic {self.topic} in time: is the broker up and "
            "the topic created (`sessionflow topics`)?"
        )

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
