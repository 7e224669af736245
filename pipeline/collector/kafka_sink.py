"""A bounded buffer between the collector's request handlers and Kafka.

Handlers never wait for Kafka: `offer()` takes events into memory and returns at once, or
refuses (the collector answers 503) when `capacity` events, or `capacity_bytes` of them
(`event_bytes`), are already waiting for a broker acknowledgement. One background thread
feeds the idempotent producer.

Invariant: every accepted event stays in `_outstanding` until Kafka acknowledges it. So
nothing is dropped silently:
- a delivery that fails (broker away longer than the producer's retries) is re-queued;
  the consumer de-duplicates by event_id, so a resend can never double-count;
- at shutdown, everything still outstanding (queued, in hand, or in the producer) is
  written to a JSON Lines spill file (already privacy-scrubbed) that
  `sessionflow produce --file` replays, and the count is logged as an error.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.config import KafkaSettings
from pipeline.events.validation import Event
from pipeline.kafka.producer import EventProducer, ProducerOptions

log = logging.getLogger(__name__)

DRAIN_BATCH = 500
GATHER_S = 0.005
RECONNECT_BACKOFF_S = 1.0
# A send blocks at most this long when Kafka is away; shutdown waits for it.
MAX_BLOCK_MS = 5_000
# The sink's producer settings over EventProducer's defaults (bench/bench_collector.py
# gives its raw kafka-python baseline the same).
PRODUCER_OPTIONS: ProducerOptions = {
    # Each produce request costs kafka-python's sender thread a fixed slice of Python
    # time; at one event per request (browsers), 5 ms batches paid it every few events.
    "linger_ms": 25,
    "max_block_ms": MAX_BLOCK_MS,
    "bootstrap_timeout_ms": MAX_BLOCK_MS,
}


# What the buffer spends on an event besides the event itself: its entries in
# `_outstanding`, `_sizes` and `_queue`, and its key.
_ENTRY_BYTES = 200


def event_bytes(event: Event) -> int:
    """An event's memory as the buffer holds it: the dict, its values and the entries.
    Field names are the code's own strings, shared by every event."""
    return sys.getsizeof(event) + sum(map(sys.getsizeof, event.values())) + _ENTRY_BYTES


@dataclass(frozen=True)
class SinkStats:
    pending: int
    delivered: int
    redelivered: int
    capacity: int
    connected: bool
    pending_bytes: int = 0
    capacity_bytes: int = 0

    @property
    def full(self) -> bool:
        return self.pending >= self.capacity or self.pending_bytes >= self.capacity_bytes


class KafkaSink:
    def __init__(
        self, kafka: KafkaSettings, capacity: int, spill_dir: Path, capacity_bytes: int
    ) -> None:
        self.kafka = kafka
        self.capacity = capacity
        self.capacity_bytes = capacity_bytes
        self.spill_dir = spill_dir
        self._changed = threading.Condition()
        self._outstanding: dict[int, Event] = {}  # accepted, not yet acknowledged
        self._sizes: dict[int, int] = {}  # event_bytes of each outstanding event
        self._pending_bytes = 0
        self._queue: deque[int] = deque()  # keys of outstanding events still to send
        self._keys = itertools.count()
        self._delivered = 0
        self._redelivered = 0
        self._closing = False
        self._idle = False  # the drain thread waits for work (offer() must wake it)
        self._producer: EventProducer | None = None
        self._thread = threading.Thread(target=self._drain, name="kafka-sink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, events: list[Event]) -> bool:
        """Take all of `events`, or none of them when the buffer is full."""
        sizes = [event_bytes(event) for event in events]
        with self._changed:
            if (
                self._closing
                or len(self._outstanding) + len(events) > self.capacity
                or self._pending_bytes + sum(sizes) > self.capacity_bytes
            ):
                return False
            for event, size in zip(events, sizes, strict=True):
                key = next(self._keys)
                self._outstanding[key] = event
                self._sizes[key] = size
                self._queue.append(key)
            self._pending_bytes += sum(sizes)
            if self._idle:  # else the drain thread is busy and will look again
                self._changed.notify()
            return True

    def stats(self) -> SinkStats:
        with self._changed:
            return SinkStats(
                len(self._outstanding), self._delivered, self._redelivered, self.capacity,
                self._producer is not None, self._pending_bytes, self.capacity_bytes,
            )  # fmt: skip

    def close(self, grace_s: float = 10.0) -> Path | None:
        """Deliver what can be delivered within `grace_s`; spill the rest to a file."""
        deadline = time.monotonic() + grace_s
        with self._changed:
            while self._outstanding and time.monotonic() < deadline:
                self._changed.wait(timeout=0.1)
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout=MAX_BLOCK_MS / 1000 + 2)
        if self._producer is not None:
            self._producer.close(timeout_s=1.0)
        with self._changed:
            leftovers = list(self._outstanding.values())
            self._outstanding.clear()
            self._sizes.clear()
            self._pending_bytes = 0
            self._queue.clear()
        return self._spill(leftovers) if leftovers else None

    # -- background thread ---------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            with self._changed:
                self._idle = True
                while not self._queue and not self._closing:
                    self._changed.wait()
                self._idle = False
                gather = not self._closing and len(self._queue) < DRAIN_BATCH
            if gather:
                # Let more requests' events gather (the producer lingers longer anyway),
                # unwoken by offer(): a thread wake-up per event costs more than its send.
                time.sleep(GATHER_S)
            with self._changed:
                if self._closing:
                    return
                keys = [self._queue.popleft() for _ in range(min(DRAIN_BATCH, len(self._queue)))]
                batch = [(key, self._outstanding[key]) for key in keys]
            self._send(batch)

    def _send(self, batch: list[tuple[int, Event]]) -> None:
        sent = 0
        try:
            producer = self._connected_producer()
            for key, event in batch:
                producer.send(
                    event,
                    on_delivered=functools.partial(self._acknowledged, key),
                    on_failed=functools.partial(self._requeue, key),
                )
                sent += 1
        except Exception as exc:  # broker unreachable or metadata timeout: keep and retry
            unsent = [key for key, _ in batch[sent:]]
            log.warning("Kafka unavailable (%s); %d events wait in the buffer", exc, len(unsent))
            with self._changed:
                self._queue.extendleft(reversed(unsent))
            time.sleep(RECONNECT_BACKOFF_S)

    def _connected_producer(self) -> EventProducer:
        if self._producer is None:
            # Every event passed validation and scrubbing already (the collector's steps).
            self._producer = EventProducer(self.kafka, **PRODUCER_OPTIONS, events_checked=True)
        return self._producer

    def _acknowledged(self, key: int) -> None:
        with self._changed:
            if self._outstanding.pop(key, None) is not None:
                self._pending_bytes -= self._sizes.pop(key)
                self._delivered += 1
            if not self._outstanding:
                # Only close() waits for this; waking the drain thread per
                # acknowledgement would cost a thread switch per event.
                self._changed.notify_all()

    def _requeue(self, key: int, error: BaseException) -> None:
        log.debug("delivery failed (%s); re-queued", error)
        with self._changed:
            if key in self._outstanding and not self._closing:
                self._queue.append(key)
                self._redelivered += 1
                self._changed.notify()

    def _spill(self, events: list[Event]) -> Path:
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        # The process id keeps two workers stopping in the same microsecond apart.
        path = self.spill_dir / f"collector-{stamp}-{os.getpid()}.jsonl"
        with path.open("w") as handle:
            for event in events:
                handle.write(json.dumps(event, separators=(",", ":")) + "\n")
        log.error(
            "%d accepted events were not acknowledged by Kafka before shutdown; saved to %s "
            "(replay: sessionflow produce --file %s)",
            len(events), path, path,
        )  # fmt: skip
        return path
