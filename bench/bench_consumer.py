"""Row 1: the consumer end to end against raw kafka-python consumption of the same topic.

One topic (6 partitions) is filled once with a generated day of events, produced by the
SDK with its default compression. Then, interleaved in the same run:

- raw: a KafkaConsumer assigned to every partition, nothing done with the records;
- end to end: LakeConsumer.run(until_caught_up=True) (group join, validation, dedup,
  sessionizer, Parquet writes, snapshots, commits), a fresh group and lake each run.

Row 1b runs the end-to-end consumer as 1 process and as 2 processes in one group, each
in its own spawned process (so both pay the same start-up), and compares events/s over
the wall time from the first start to the last exit. Row 1c compares kafka-python's
decoding (CRC, decompression, record parsing) of the same events under each codec,
without a broker: how the producer's default codec was chosen.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.codec import has_lz4, has_zstd
from kafka.record import MemoryRecords, MemoryRecordsBuilder

from bench.common import REPEATS, Figure, command_for, timed
from pipeline.config import Settings, load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.kafka.produce import produce_file
from pipeline.kafka.producer import EventProducer
from pipeline.kafka.topics import ensure_topics
from pipeline.lake.consumer import LakeConsumer

NEEDS_BROKER = True
EVENTS_PER_DAY = 200_000  # the generator's daily target: ~232k records on 2026-11-01
QUICK_EVENTS_PER_DAY = 43_000  # ~50k records
DAY = date(2026, 11, 1)
# kafka-python's codec ids (kafka.record.default_records.DefaultRecordBatch.CODEC_*), for
# the codecs whose library is installed (zstd needs `zstandard`, not a dependency).
CODECS = {
    name: codec
    for name, codec, available in (
        ("none", 0, True),
        ("gzip", 1, True),
        ("lz4", 3, has_lz4()),
        ("zstd", 4, has_zstd()),
    )
    if available
}
CODEC_RECORDS_PER_BATCH = 500


def run(bootstrap: str, quick: bool) -> list[Figure]:
    codec = _default_compression()
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as name:
        directory = Path(name)
        topic = f"bench.consume.{uuid.uuid4().hex[:8]}"
        base = _settings(bootstrap, topic, directory / "setup", "setup")
        ensure_topics(base.kafka)
        per_day = QUICK_EVENTS_PER_DAY if quick else EVENTS_PER_DAY
        files = write_dataset(GeneratorConfig(days=1, start=DAY, events_per_day=per_day), directory)
        produced = produce_file(base, files.events_path, lambda line: None).produced

        raw_rates: list[float] = []
        e2e_rates: list[float] = []
        for _ in range(REPEATS):  # interleaved, so drift hits both alike
            raw_rates.append(_rate(timed(lambda: _raw_consume(bootstrap, topic, produced))))
            e2e_rates.append(_rate(timed(lambda: _end_to_end(bootstrap, topic, directory))))

        one: list[float] = []
        two: list[float] = []
        for _ in range(1 if quick else REPEATS):
            one.append(_processes(1, bootstrap, topic, directory))
            two.append(_processes(2, bootstrap, topic, directory))

        values = files.events_path.read_bytes().splitlines()[: 10_000 if quick else 40_000]
        decode = _codec_rates(values, rounds=3 if quick else 5)

    raw, e2e = statistics.median(raw_rates), statistics.median(e2e_rates)
    runs = f"median of {REPEATS} interleaved runs"
    return [
        Figure(
            row="1",
            what=f"consumer end to end, {produced:,} records, 6 partitions",
            project=e2e,
            baseline=raw,
            unit="events/s",
            baseline_what="raw kafka-python consume",
            target="≥ 0.8",
            command=command_for("consumer"),
            note=(
                f"records {codec}-compressed JSON (the SDK's default), read from the "
                f"beginning; LakeConsumer.run(until_caught_up=True) with a fresh group and "
                f"lake each run; {runs}. Each fetched batch is decoded and validated in bulk "
                "(msgspec + Arrow), records the fast path cannot vouch for take the "
                "per-event path."
            ),
        ),
        Figure(
            row="1b",
            what=f"2 consumer processes in one group vs 1, {produced:,} records",
            project=statistics.median(two),
            baseline=statistics.median(one),
            unit="events/s",
            baseline_what="1 consumer process",
            target="scales (≈ 2 on 2 cores)",
            command=command_for("consumer"),
            note=(
                "each consumer in its own spawned process, fresh group and lake per run; "
                "events/s over the wall time from a common start (a barrier after imports "
                "and set-up) to the last exit, group joins and rebalances included "
                f"(median of {len(one)}); the broker shares the same 2 cores."
            ),
        ),
        Figure(
            row="1c",
            what=(
                f"kafka-python decode (CRC + decompress + records), {len(values):,} events, "
                f"{CODEC_RECORDS_PER_BATCH} a batch"
            ),
            project=decode[codec][0],
            baseline=decode["gzip"][0],
            unit="events/s",
            baseline_what="gzip",
            target="faster than gzip",
            command=command_for("consumer"),
            note=f"{codec} is the producer's default; "
            + "; ".join(
                f"{name} {rate:,.0f} events/s, {size:.0f} bytes/event"
                for name, (rate, size) in decode.items()
            ),
        ),
    ]


def _rate(measured: tuple[int, float]) -> float:
    items, seconds = measured
    return items / seconds


def _raw_consume(bootstrap: str, topic: str, produced: int) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, max_poll_records=5_000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = 0
    while seen < produced:
        seen += sum(len(records) for records in consumer.poll(timeout_ms=1000).values())
    consumer.close()
    return seen


def _end_to_end(bootstrap: str, topic: str, directory: Path) -> int:
    run_id = uuid.uuid4().hex[:8]
    settings = _settings(bootstrap, topic, directory / run_id, run_id)
    return LakeConsumer(settings, say=lambda line: None).run(until_caught_up=True).events


def _processes(count: int, bootstrap: str, topic: str, directory: Path) -> float:
    """events/s of `count` consumer processes in one new group, first start to last exit."""
    run_id = uuid.uuid4().hex[:8]
    context = multiprocessing.get_context("spawn")  # no kafka-python threads forked
    results = context.Queue()
    ready = context.Barrier(count)  # all start consuming together, after their imports
    workers = [
        context.Process(
            target=_consumer_process,
            args=(bootstrap, topic, str(directory / run_id), run_id, ready, results),
        )
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    outcomes: list[tuple[int, float, float]] = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    events = sum(events for events, _, _ in outcomes)
    started = min(start for _, start, _ in outcomes)
    ended = max(end for _, _, end in outcomes)
    return events / (ended - started)


def _consumer_process(
    bootstrap: str,
    topic: str,
    data_dir: str,
    group: str,
    ready: Any,
    results: multiprocessing.Queue[tuple[int, float, float]],
) -> None:
    settings = _settings(bootstrap, topic, Path(data_dir), group)
    consumer = LakeConsumer(settings, say=lambda line: None)
    ready.wait()
    started = time.time()  # wall clock: comparable across processes
    events = consumer.run(until_caught_up=True).events
    results.put((events, started, time.time()))


def _codec_rates(values: list[bytes], rounds: int) -> dict[str, tuple[float, float]]:
    """codec -> (events/s decoded, bytes per event on the wire), interleaved rounds."""
    encoded = {name: _encode(values, codec) for name, codec in CODECS.items()}
    seconds: dict[str, list[float]] = {name: [] for name in CODECS}
    for _ in range(rounds):
        for name, buffer in encoded.items():
            started = time.perf_counter()
            _decode(buffer)
            seconds[name].append(time.perf_counter() - started)
    return {
        name: (len(values) / statistics.median(seconds[name]), len(encoded[name]) / len(values))
        for name in CODECS
    }


def _encode(values: list[bytes], codec: int) -> bytes:
    batches = []
    for start in range(0, len(values), CODEC_RECORDS_PER_BATCH):
        builder = MemoryRecordsBuilder(magic=2, compression_type=codec, batch_size=1 << 30)
        for value in values[start : start + CODEC_RECORDS_PER_BATCH]:
            builder.append(timestamp=0, key=b"site/visitor", value=value, headers=[])
        builder.close()
        batches.append(bytes(builder.buffer()))
    return b"".join(batches)


def _decode(buffer: bytes) -> int:
    """What a consumer's fetch does with each batch: check the CRC, decompress, read."""
    records = MemoryRecords(buffer)
    count = 0
    while records.has_next():
        batch = records.next_batch()
        if not batch.validate_crc():
            raise ValueError("CRC mismatch")
        count += sum(1 for _ in batch)
    return count


def _default_compression() -> str:
    import inspect

    default: str = inspect.signature(EventProducer).parameters["compression"].default
    return default


def _settings(bootstrap: str, topic: str, data_dir: Path, group: str) -> Settings:
    return load_settings(
        environ={
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SESSIONFLOW_DATA_DIR": str(data_dir),
            "SESSIONFLOW_KAFKA__EVENTS_TOPIC": topic,
            "SESSIONFLOW_KAFKA__DLQ_TOPIC": f"{topic}.dlq",
            "SESSIONFLOW_CONSUMER__GROUP_ID": f"bench-{group}",
            "SESSIONFLOW_SESSIONIZATION__ALLOWED_LATENESS_MINUTES": "180",
        }
    )
