"""Rows 3, 4 and 4b: the collector on loopback under wrk (Debian's package), and whether
Kafka delivery keeps up.

- Row 3: PlainSignal `POST /api/event` requests/s against `GET /health` on the same server
  in the same run: the HTTP stack with no ingestion work.
- Rows 4 and 4b: GA4 `/mp/collect` and gtag `/g/collect` batches of 25 events; events/s
  counted until Kafka holds them (wrk's time plus the time the topic's end offsets take
  to reach every event answered 2xx), against raw kafka-python producing the same
  canonical events, pre-encoded, with the collector's producer settings.

The collector runs as `sessionflow collect --workers N`; wrk, the broker and the collector
share the machine's cores. At the end the collector is stopped with SIGTERM (it flushes
its buffers) and the topic's end offsets are compared with what was answered 2xx.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition

from bench.bench_producer import raw_producer
from bench.common import REPEATS, Figure, command_for, free_port, timed
from pipeline.collector.enrichment import Ingestor, RequestContext
from pipeline.collector.ga4 import check_mp
from pipeline.collector.gtag import parse_gtag
from pipeline.collector.hits import Hit
from pipeline.collector.kafka_sink import PRODUCER_OPTIONS
from pipeline.config import KafkaSettings, Settings, load_settings
from pipeline.errors import SessionflowError
from pipeline.events.timestamps import now_micros
from pipeline.events.validation import Event
from pipeline.kafka.producer import encode_event, partition_key
from pipeline.kafka.topics import ensure_topics

NEEDS_BROKER = True
WORKERS = 2  # `sessionflow collect --workers`: one per core
CONNECTIONS = 32
DURATION_S = 10
QUICK_DURATION_S = 3
QUICK_REPEATS = 2  # keeps the quick section under 45 s
BASELINE_EVENTS = 50_000
QUICK_BASELINE_EVENTS = 10_000
EVENTS_PER_BATCH = 25  # as in wrk/ga4.lua and wrk/gtag.lua
SITE = "shop.example"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# The bodies the wrk scripts send, for the baselines' canonical events.
GA4_EVENT = {
    "name": "page_view",
    "params": {"page_location": "https://shop.example/p", "session_id": "1731000000"},
}
GA4_BODY = json.dumps(
    {"client_id": "123.456", "events": [GA4_EVENT] * EVENTS_PER_BATCH}, separators=(",", ":")
).encode()
GTAG_QUERY = "v=2&tid=shop.example&cid=123.456&sid=1731000000&dl=https%3A%2F%2Fshop.example%2Fp"
GTAG_BODY = "\n".join(["en=page_view&_et=1200"] * EVENTS_PER_BATCH).encode()
SCRIPTS = Path(__file__).parent / "wrk"
DELIVERY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WrkRun:
    requests_per_s: float
    answered_2xx: int  # requests answered 2xx
    seconds: float


def wrk(url: str, script: Path | None, duration_s: int) -> WrkRun:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration_s}s"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rate is None:
        raise SessionflowError(f"unexpected wrk output: {output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    failed = int(non_2xx.group(1)) if non_2xx else 0
    seconds = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return WrkRun(float(rate.group(1)), int(total.group(1)) - failed, seconds)


def run(bootstrap: str, quick: bool) -> list[Figure]:
    if shutil.which("wrk") is None:
        raise SessionflowError("wrk not found: apt-get install wrk")
    duration = QUICK_DURATION_S if quick else DURATION_S
    repeats = QUICK_REPEATS if quick else REPEATS
    baseline_events = QUICK_BASELINE_EVENTS if quick else BASELINE_EVENTS
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SESSIONFLOW_DATA_DIR": directory,
            "SESSIONFLOW_SITES": json.dumps([SITE]),
            "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"bench.{uuid.uuid4().hex[:8]}",
            "SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES": '["127.0.0.1"]',
            "SESSIONFLOW_COLLECTOR__BUFFER_MAX_EVENTS": "10000000",
            "PATH": "/usr/bin:/bin",
        }
        settings = load_settings(environ=env)
        ensure_topics(settings.kafka)
        # The baselines produce to a topic of their own: the collector's counts its events.
        raw_env = {**env, "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"{settings.kafka.events_topic}.raw"}
        raw_kafka = load_settings(environ=raw_env).kafka
        ensure_topics(raw_kafka)
        ga4_events, gtag_events = canonical_events(settings, baseline_events)
        collector = subprocess.Popen(
            [str(Path(".venv/bin/sessionflow").resolve()), "collect", "--port", str(port),
             "--workers", str(WORKERS)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        offsets = EndOffsets(bootstrap, settings.kafka.events_topic)
        runs: dict[str, list[float]] = {k: [] for k in ("health", "ps", "ga4", "gtag")}
        baselines: dict[str, list[float]] = {"ga4": [], "gtag": []}
        answered = 0  # events answered 2xx so far
        drains: list[float] = []
        try:
            _wait_until_up(base)
            for _ in range(repeats):  # interleaved, so drift hits every measure alike
                runs["health"].append(wrk(f"{base}/health", None, duration).requests_per_s)
                plain = wrk(f"{base}/api/event", SCRIPTS / "plainsignal.lua", duration)
                runs["ps"].append(plain.requests_per_s)
                answered += plain.answered_2xx
                for name, url, script in (
                    ("ga4", f"{base}/mp/collect?measurement_id={SITE}", "ga4.lua"),
                    ("gtag", f"{base}/g/collect?{GTAG_QUERY}", "gtag.lua"),
                ):
                    batches = wrk(url, SCRIPTS / script, duration)
                    answered += batches.answered_2xx * EVENTS_PER_BATCH
                    drain = offsets.wait_for(answered)
                    drains.append(drain)
                    events = batches.answered_2xx * EVENTS_PER_BATCH
                    runs[name].append(events / (batches.seconds + drain))
                    pending = ga4_events if name == "ga4" else gtag_events
                    baselines[name].append(produce_raw(raw_kafka, pending))
        finally:
            collector.send_signal(signal.SIGTERM)  # graceful: each worker flushes its buffer
            collector.wait(timeout=60)
        delivered = offsets.total()
        offsets.close()
    median = {name: statistics.median(rates) for name, rates in runs.items()}
    shared = (
        f"`sessionflow collect --workers {WORKERS}`; wrk 1 thread {CONNECTIONS} connections, "
        f"{duration} s runs, median of {repeats} interleaved; wrk, the broker and the "
        f"collector share the machine's {len(os.sched_getaffinity(0))} cores"
    )
    delivery = (
        f"delivery: {delivered:,} events in the topic (end offsets after SIGTERM) for "
        f"{answered:,} answered 2xx ({'all delivered' if delivered >= answered else 'LOST'}); "
        f"slowest drain after a run {max(drains, default=0.0):.1f} s, counted in the rate"
    )
    return [
        Figure(
            row="3",
            what=f"collector, PlainSignal POST /api/event, wrk 1 thread {CONNECTIONS} connections",
            project=median["ps"],
            baseline=median["health"],
            unit="req/s",
            baseline_what="GET /health, same server, same run",
            target="≥ 0.7",
            command=command_for("collector"),
            note=f"{shared}. The load tool takes CPU from the server it measures.",
        ),
        Figure(
            row="4",
            what=f"collector, GA4 /mp/collect batches of {EVENTS_PER_BATCH}, until in Kafka",
            project=median["ga4"],
            baseline=statistics.median(baselines["ga4"]),
            unit="events/s",
            baseline_what="raw kafka-python, same events pre-encoded, same producer settings",
            target="≥ 0.8, delivery keeping up",
            command=command_for("collector"),
            note=f"{shared}. {delivery}. Baseline: {baseline_events:,} events, one producer.",
        ),
        Figure(
            row="4b",
            what=f"collector, gtag /g/collect batches of {EVENTS_PER_BATCH}, until in Kafka",
            project=median["gtag"],
            baseline=statistics.median(baselines["gtag"]),
            unit="events/s",
            baseline_what="raw kafka-python, same events pre-encoded, same producer settings",
            target="≥ 0.8, delivery keeping up",
            command=command_for("collector"),
            note=f"as row 4 (same run, same delivery count); {baseline_events:,} events",
        ),
    ]


def canonical_events(settings: Settings, count: int) -> tuple[list[Event], list[Event]]:
    """What the collector makes of the wrk scripts' GA4 and gtag bodies, `count` each."""
    ingestor = Ingestor(settings)
    ga4: list[Event] = []
    gtag: list[Event] = []
    while len(ga4) < count:
        ga4 += check_mp(SITE, GA4_BODY, ingestor, _context("")).events
    while len(gtag) < count:
        context = _context(CHROME)
        for hit in parse_gtag(GTAG_QUERY, GTAG_BODY):
            assert isinstance(hit, Hit)
            gtag.append(ingestor.to_canonical(hit, context))
    return ga4[:count], gtag[:count]


def _context(user_agent: str) -> RequestContext:
    headers = {"user-agent": user_agent} if user_agent else {}
    return RequestContext("10.1.2.3", user_agent, headers, now_micros())


def produce_raw(kafka: KafkaSettings, events: list[Event]) -> float:
    """events/s of raw kafka-python with the collector's producer settings, pre-encoded."""
    encoded = [(partition_key(event), encode_event(event)) for event in events]

    def produce() -> int:
        producer = raw_producer(kafka, **PRODUCER_OPTIONS)
        for key, value in encoded:
            producer.send(kafka.events_topic, key=key, value=value)
        producer.flush()
        producer.close()
        return len(encoded)

    items, seconds = timed(produce)
    return items / seconds


class EndOffsets:
    """The topic's end offsets, summed: how many events Kafka holds."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        partitions = self._consumer.partitions_for_topic(topic) or set()
        self._partitions = [TopicPartition(topic, p) for p in sorted(partitions)]

    def total(self) -> int:
        ends: dict[TopicPartition, int] = self._consumer.end_offsets(self._partitions)
        return sum(ends.values())

    def wait_for(self, count: int) -> float:
        """Seconds until the topic holds `count` collector events (raises past a minute)."""
        started = time.perf_counter()
        while self.total() < count:
            if time.perf_counter() - started > DELIVERY_TIMEOUT_S:
                raise SessionflowError(f"Kafka holds {self.total()} of {count} events")
            time.sleep(0.05)
        return time.perf_counter() - started

    def close(self) -> None:
        self._consumer.close()


def _wait_until_up(base: str) -> None:
    for _ in range(150):
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SessionflowError("collector did not start")
