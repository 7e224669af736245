"""`sessionflow consume`: Kafka -> validate -> de-duplicate -> sessionize -> Parquet lake.

One consumer group; each assigned partition has a `PartitionWorker` holding the pure
state (Deduplicator, Sessionizer). Work happens in commit cycles. A cycle ends after
`cycle_max_events` records or `cycle_max_seconds`, and is made durable in this order:

  1. manifest   the files this cycle will write (partition store, fsynced)
  2. lake       event files `event_date=D/<topic>-p<P>-o<first offset>.parquet`, rejects
  3. DLQ        rejected payloads (redacted) to the dead-letter topic, flushed
  4. snapshot   sessionizer + dedup state and the next offset (atomic rename)
  5. commit     the next offset to Kafka; the manifest is removed

Restart (or a new owner after a rebalance) restores the snapshot, deletes the files of a
cycle that had no snapshot yet (its manifest says which), and seeks to the snapshot's
offset. File names depend only on the cycle's first offset, so the replayed cycle
rewrites the same names. Hence: SIGKILL at any moment loses nothing and duplicates
nothing, and the session ids are the same as in an uninterrupted run.

Rebalance callbacks run on kafka-python's IO loop, so they only change ownership (under a
lock that a cycle's flush also holds); a revoked partition's unflushed work is dropped and
redone by its next owner from the last snapshot.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from pipeline.config import Settings
from pipeline.events.site_rules import SiteRules
from pipeline.events.timestamps import history_window, now_micros
from pipeline.faults import fault_point
from pipeline.kafka.client import client_options
from pipeline.lake.files import disk_error
from pipeline.lake.processing import accept_json_batch, no_events, process
from pipeline.lake.state import PartitionState, PartitionStore
from pipeline.lake.store import Lake, RejectedPayload
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import MICROS_PER_MINUTE, Sessionizer, SessionRules

log = logging.getLogger(__name__)

KNOWN_ENDS_MAX_AGE_S = 10.0  # how long the last end offsets read may stand in for the broker's
# Asked while the broker is away, end offsets wait at most this long, not the client's
# 30 s request timeout: the poll loop (heartbeats, the stop signal) waits meanwhile.
END_OFFSETS_TIMEOUT_MS = 5_000
POLL_RETRY_S = 0.5  # after a poll the broker's absence failed, before the next

# -- one partition ------------------------------------------------------------------------


@dataclass
class CycleTotals:
    events: int = 0
    rejected: int = 0
    written: int = 0
    duplicates: int = 0
    late: int = 0

    def line(self) -> str:
        return (
            f"consumed {self.events} events, wrote {self.written} to the lake; "
            f"{self.duplicates} duplicates dropped, {self.late} late, {self.rejected} rejected"
        )


@dataclass
class PartitionWorker:
    """One partition's current cycle: from `cycle_start` up to (not including) `position`."""

    partition: TopicPartition
    state: PartitionState
    store: PartitionStore
    cycle_start: int = 0
    position: int = 0
    cycle_records: int = 0
    cycle_began: float = field(default_factory=time.monotonic)
    last_record_at: float = field(default_factory=time.monotonic)
    accepted: list[pa.Table] = field(default_factory=list)  # one per fetched batch
    rejects: list[RejectedPayload] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cycle_start = self.position = self.state.next_offset


class LakeConsumer:
    def __init__(
        self,
        settings: Settings,
        *,
        instance_id: str | None = None,
        say: Callable[[str], None] = log.info,
    ) -> None:
        self.settings = settings
        self.say = say
        self.topic = settings.kafka.events_topic
        self.rules = SessionRules.from_settings(settings)
        self.lake = Lake(settings.lake_dir, settings.timezone, self.rules)
        self.window = history_window(settings.validation)
        self.site_rules = SiteRules.from_settings(settings)
        self._dedup_window = settings.sessionization.dedup_window_minutes * MICROS_PER_MINUTE
        self._workers: dict[TopicPartition, PartitionWorker] = {}
        self._owned: set[TopicPartition] = set()
        self._ownership = threading.Lock()
        self._stop = threading.Event()
        self._known_ends: dict[TopicPartition, int] = {}  # end offsets last read
        self._known_ends_at = 0.0  # time.monotonic() of that read
        self.totals = CycleTotals()
        self._consumer = KafkaConsumer(
            **client_options(settings.kafka),
            group_id=settings.consumer.group_id,
            group_instance_id=instance_id,
            client_id=f"sessionflow-consumer-{instance_id or 'dynamic'}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5_000,
            session_timeout_ms=settings.consumer.session_timeout_ms,
            isolation_level="read_committed",
        )
        self._dlq = KafkaProducer(
            **client_options(settings.kafka),
            client_id="sessionflow-consumer-dlq",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        self._consumer.subscribe([self.topic], listener=_Ownership(self))

    # -- the loop -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, until_caught_up: bool = False) -> CycleTotals:
        last_log, logged_events = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                batches = self._poll()
                self._adopt_new_partitions()
                for tp, records in batches.items():
                    self._take(tp, records)
                caught_up = until_caught_up and self._caught_up()
                self._flush_due(final=caught_up)
                if caught_up:
                    break
                if time.monotonic() - last_log >= self.settings.consumer.log_interval_seconds:
                    rate = (self.totals.events - logged_events) / (time.monotonic() - last_log)
                    self._log_progress(rate)
                    last_log, logged_events = time.monotonic(), self.totals.events
            if not until_caught_up:
                self._flush_due(final=False, force=True)  # graceful stop: no work lost
        finally:
            self._consumer.close(autocommit=False)
            self._dlq.close(timeout=10)
        return self.totals

    def _poll(self) -> dict[TopicPartition, list[Any]]:
        """One poll. A retriable failure (kafka-python 3.0 raises the broker's absence out of
        poll when a coordinator lookup's metadata refresh finds no broker) is waited out:
        nothing was taken, so the next poll resumes where this one would have."""
        try:
            batches: dict[TopicPartition, list[Any]] = self._consumer.poll(timeout_ms=500)
        except KafkaError as exc:
            if not exc.retriable:
                raise
            log.warning("poll failed (%s); polling on", type(exc).__name__)
            self._stop.wait(POLL_RETRY_S)
            return {}
        return batches

    def _take(self, tp: TopicPartition, records: list[Any]) -> None:
        worker = self._worker(tp)
        if worker is None:
            return
        # Records below our position were fetched from the group's committed offset
        # before we sought to the snapshot's (a crash between snapshot and commit).
        fresh = [record for record in records if record.offset >= worker.position]
        if fresh:
            accepted, rejects = self._accept(fresh)
            worker.accepted.append(accepted)
            worker.rejects.extend(rejects)
            worker.position = fresh[-1].offset + 1  # offsets may have gaps (markers)
            worker.cycle_records += len(fresh)
            worker.last_record_at = time.monotonic()

    def _accept(self, records: list[Any]) -> tuple[pa.Table, list[RejectedPayload]]:
        """Fetched records -> (accepted events, rejections), one outcome per record, in order."""
        now = now_micros()

        def source(index: int) -> str:
            record = records[index]
            return f"{record.topic}/{record.partition}/{record.offset}"

        # The whole fetched batch in one call; each record still yields exactly one outcome.
        values = [record.value or b"" for record in records]
        batch = accept_json_batch(
            values, source, now=now, window=self.window, rules=self.site_rules
        )
        return batch.events, batch.rejects

    # -- cycles -----------------------------------------------------------------------------

    def _flush_due(self, *, final: bool, force: bool = False) -> None:
        now = time.monotonic()
        limits = self.settings.consumer
        for tp in list(self._workers):
            worker = self._workers[tp]
            idle = now - worker.last_record_at >= limits.idle_release_seconds
            due = (
                force
                or final
                or worker.cycle_records >= limits.cycle_max_events
                or (worker.cycle_records and now - worker.cycle_began >= limits.cycle_max_seconds)
                or (idle and worker.state.sessionizer.pending_events)
            )
            if due:
                floor = now_micros() - self.rules.lateness_micros if idle else None
                self._flush(tp, final=final, cutoff_floor=floor)

    def _flush(self, tp: TopicPartition, *, final: bool, cutoff_floor: int | None) -> None:
        with self._ownership:
            worker = self._workers.get(tp)
            if worker is None or tp not in self._owned:
                return  # revoked meanwhile: its next owner redoes this work
            state = worker.state
            accepted = pa.concat_tables(worker.accepted) if worker.accepted else no_events()
            processed = process(
                state,
                accepted,
                ingested_at=datetime.now(UTC),
                final=final,
                cutoff_floor=cutoff_floor,
            )
            self.totals.duplicates += processed.duplicates
            self.totals.late += processed.late
            rows = processed.rows
            name = f"{tp.topic}-p{tp.partition:03d}-o{worker.cycle_start:012d}-c{state.cycles}"
            planned = self.lake.event_paths(rows, name) if rows is not None else []
            writing = "the consumer state"
            try:
                worker.store.begin_cycle(state, planned)
                writing = "the lake"
                written = self.lake.write_events(rows, name) if rows is not None else []
                self.lake.write_rejected(worker.rejects, name)
                self._send_to_dlq(worker.rejects)
                fault_point("after_lake_write")
                state.next_offset = worker.position
                state.cycles += 1
                writing = "the consumer state"
                worker.store.save(state)
            except OSError as exc:
                # Stop before the commit: the group's offset stays at this cycle's start,
                # and the next run undoes the cycle's files (its manifest) and redoes it.
                raise disk_error(
                    writing,
                    exc,
                    f"consume stopped without committing {tp.topic}/{tp.partition} past "
                    f"offset {worker.cycle_start}; fix the disk and run it again",
                ) from exc
            fault_point("after_snapshot")
            self._commit(tp, state.next_offset)
            worker.store.end_cycle()
            self.totals.events += worker.cycle_records
            self.totals.rejected += len(worker.rejects)
            self.totals.written += processed.written
            self._workers[tp] = PartitionWorker(tp, state, worker.store)
            log.debug("%s: cycle %s wrote %d files", tp, name, len(written))

    def _send_to_dlq(self, rejects: list[RejectedPayload]) -> None:
        for item in rejects:
            body = json.dumps(item.redacted()).encode()
            self._dlq.send(self.settings.kafka.dlq_topic, value=body)
        if rejects:
            self._dlq.flush(timeout=30)

    def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        try:
            self._consumer.commit({tp: OffsetAndMetadata(next_offset, "", -1)})
        except Exception as exc:  # a rebalance raced us; the snapshot stays the truth
            log.warning("%s: offset commit failed (%s); the snapshot keeps the position", tp, exc)

    # -- ownership ----------------------------------------------------------------------------

    def _worker(self, tp: TopicPartition) -> PartitionWorker | None:
        with self._ownership:
            if tp not in self._owned:
                return None
            if tp not in self._workers:
                self._workers[tp] = self._adopt(tp)
            return self._workers[tp]

    def _adopt_new_partitions(self) -> None:
        with self._ownership:
            new = self._owned - self._workers.keys()
        for tp in sorted(new):
            self._worker(tp)

    def _adopt(self, tp: TopicPartition) -> PartitionWorker:
        store = PartitionStore(self.settings.consumer_state_dir / tp.topic / f"p{tp.partition:03d}")
        state = store.load()
        if state is None:
            committed = self._consumer.committed(tp)
            state = PartitionState(
                dedup=Deduplicator(self._dedup_window),
                sessionizer=Sessionizer(self.rules),
                next_offset=committed if committed is not None else self._beginning(tp),
            )
        try:
            undone = store.undo_unfinished_cycle(state)
        except OSError as exc:  # still the read-only or full disk a cycle stopped on
            raise disk_error(
                "the lake",
                exc,
                f"consume stopped without committing {tp.topic}/{tp.partition} past offset "
                f"{state.next_offset} (an unfinished cycle's files could not be undone); fix "
                "the disk and run it again",
            ) from exc
        if undone:
            self.say(f"{tp.topic}/{tp.partition}: removed {undone} files of an unfinished cycle")
        self._consumer.seek(tp, state.next_offset)
        return PartitionWorker(tp, state, store)

    def _beginning(self, tp: TopicPartition) -> int:
        offsets: dict[TopicPartition, int] = self._consumer.beginning_offsets([tp])
        return offsets[tp]

    def _caught_up(self) -> bool:
        with self._ownership:
            owned = sorted(self._owned)
        if not owned:
            return False
        if not all(tp in self._workers for tp in owned):
            return False
        # The consumer's own position skips transaction markers, ours may not reach them.
        # Ends grow: a partition behind the last end seen is behind the current one too,
        # so the broker is asked only once everything has reached that mark, or when the
        # mark is old (a recreated topic's ends start again lower).
        positions = {tp: self._consumer.position(tp) for tp in owned}
        fresh = time.monotonic() - self._known_ends_at < KNOWN_ENDS_MAX_AGE_S
        if fresh and any(positions[tp] < self._known_ends.get(tp, 0) for tp in owned):
            return False
        ends = self._end_offsets(owned)
        if ends is None:
            return False  # the broker is away: not caught up, keep polling until it is back
        self._known_ends, self._known_ends_at = ends, time.monotonic()
        return all(positions[tp] >= self._known_ends[tp] for tp in owned)

    def _log_progress(self, rate: float) -> None:
        with self._ownership:
            owned = sorted(self._owned)
        ends = self._end_offsets(owned) if owned else {}
        lag: int | str = "unknown (Kafka does not answer)"
        if ends is not None:
            with self._ownership:
                positions = {tp: worker.position for tp, worker in self._workers.items()}
            lag = sum(max(0, ends[tp] - positions.get(tp, 0)) for tp in owned)
        self.say(
            f"{self.totals.line()}; {rate:,.0f} events/s, lag {lag}, "
            f"partitions {[tp.partition for tp in owned]}"
        )

    def _end_offsets(self, owned: list[TopicPartition]) -> dict[TopicPartition, int] | None:
        """The partitions' end offsets, or None while the broker is away: a broker restart
        must not stop a consumer that polls through it."""
        try:
            ends: dict[TopicPartition, int] = self._consumer.end_offsets(
                owned, timeout_ms=END_OFFSETS_TIMEOUT_MS
            )
        except KafkaError as exc:
            log.warning("end offsets unavailable (%s); polling on", type(exc).__name__)
            return None
        return ends

    def lost(self, partitions: list[TopicPartition]) -> None:
        with self._ownership:
            for tp in partitions:
                self._owned.discard(tp)
                self._workers.pop(tp, None)

    def gained(self, partitions: list[TopicPartition]) -> None:
        with self._ownership:
            self._owned.update(partitions)


class _Ownership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Runs on kafka-python's IO loop: only bookkeeping, no consumer calls, no I/O."""

    def __init__(self, consumer: LakeConsumer) -> None:
        self.consumer = consumer

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if revoked:  # a rebalance (or close) takes partitions; not a first join's empty call
            fault_point("on_revoke")
        self.consumer.lost(list(revoked))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.consumer.gained(list(assigned))
        if assigned:  # the group has settled and handed this member partitions
            fault_point("on_assign")

    def on_partitions_lost(self, lost: list[TopicPartition]) -> None:
        self.consumer.lost(list(lost))


def install_signal_handlers(consumer: LakeConsumer) -> None:
    def handle(signum: int, frame: object) -> None:
        consumer.stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
