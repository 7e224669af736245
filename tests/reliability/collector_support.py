"""Shared pieces of the collector's reliability tests (broker restart, load): requests that
carry a unique marker through every protocol, per-marker counting on the topic and in the
lake, bounded waits, /proc readings, and a multi-process open-loop load generator.

Browser protocols send no event id, so each event carries its marker in its page URL's
path (`https://<site>/m/<marker>`): the path survives URL scrubbing into the canonical
event, the topic and the lake's `page_url` column.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import queue
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import duckdb
import httpx
from kafka import KafkaConsumer, TopicPartition

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
PROTOCOLS = ("plainsignal", "plausible", "ga4mp", "gtag")
MARKER = re.compile(rb"/m/([A-Za-z0-9_-]+)")
# Settings a collector under these tests needs: the client address from a proxy header
# (on loopback every peer is 127.0.0.1, and the cookie-free visitor id hashes the address):
# the test stands in for a trusted proxy on loopback.
COLLECTOR_SETTINGS = {"SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES": '["127.0.0.1"]'}


@dataclass(frozen=True)
class MarkedRequest:
    method: str
    target: str  # path and query
    headers: dict[str, str]
    body: bytes


def client_ip(n: int) -> str:
    """A documentation-range address (RFC 5737), varied so visitors spread over partitions."""
    block = ("192.0.2", "198.51.100", "203.0.113")[n % 3]
    return f"{block}.{1 + (n // 3) % 254}"


def marked_request(protocol: str, marker: str, n: int) -> MarkedRequest:
    """One event carrying `marker` in its page URL, as `protocol`'s clients send it."""
    headers = {"User-Agent": CHROME, "X-Forwarded-For": client_ip(n)}
    if protocol == "plainsignal":
        body = {"name": "page_view", "url": f"https://shop.example/m/{marker}"}
        return MarkedRequest(
            "POST",
            "/api/event",
            {**headers, "Content-Type": "text/plain"},
            json.dumps(body).encode(),
        )
    if protocol == "plausible":
        body = {"n": "pageview", "u": f"https://shop.example/m/{marker}", "d": "shop.example"}
        return MarkedRequest(
            "POST",
            "/api/event",
            {**headers, "Content-Type": "text/plain"},
            json.dumps(body).encode(),
        )
    if protocol == "ga4mp":
        page = {"page_location": f"https://blog.example/m/{marker}"}
        ga4 = {"client_id": f"{n}.1731000000", "events": [{"name": "page_view", "params": page}]}
        return MarkedRequest(
            "POST",
            "/mp/collect?measurement_id=blog.example",
            {**headers, "Content-Type": "application/json"},
            json.dumps(ga4).encode(),
        )
    if protocol == "gtag":
        query = httpx.QueryParams(
            {
                "v": "2",
                "tid": "shop.example",
                "cid": f"{n}.1731000000",
                "en": "page_view",
                "dl": f"https://shop.example/m/{marker}",
            }
        )
        return MarkedRequest("GET", f"/g/collect?{query}", headers, b"")
    raise ValueError(f"unknown protocol {protocol}")


def reached(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Whether `condition()` came to hold within `timeout_s` (a bound, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)  # polling interval of a condition
    return True


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Return once `condition()` holds; fail after `timeout_s`."""
    if not reached(condition, timeout_s):
        raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def markers_in(values: list[bytes]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for value in values:
        match = MARKER.search(value)
        counts[match.group(1).decode() if match else "<none>"] += 1
    return counts


def topic_markers(bootstrap: str, topic: str, timeout_s: float = 120.0) -> Counter[str]:
    """Each marker's number of messages on `topic`, read from the start to the end offsets
    of every partition (taken when the read begins)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        wait_until(lambda: bool(consumer.partitions_for_topic(topic)), 60, f"topic {topic}")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends: dict[TopicPartition, int] = consumer.end_offsets(tps)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"topic {topic} not read to its end"
            for records in consumer.poll(timeout_ms=500, max_records=50_000).values():
                values.extend(record.value for record in records)
        return markers_in(values)
    finally:
        consumer.close()


def lake_markers(data_dir: Path) -> Counter[str]:
    """Each marker's number of rows in the lake (none before the first file exists)."""
    files = list((data_dir / "lake" / "events").glob("event_date=*/*.parquet"))
    if not files:
        return Counter()
    rows = duckdb.execute(
        "SELECT page_url FROM read_parquet(?, hive_partitioning = true, union_by_name = true)",
        [[str(path) for path in files]],
    ).fetchall()
    return markers_in([(url or "").encode() for (url,) in rows])


def health(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/health", timeout=10).json()
    return answer


def rss_mb(pid: int) -> float:
    """The process's resident set size (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def doubled(counts: Counter[str]) -> list[str]:
    return sorted(marker for marker, n in counts.items() if n > 1)


# -- load generator --------------------------------------------------------------------------
#
# Raw HTTP/1.1 keep-alive over asyncio streams: httpx spends several times the collector's
# own cost per request, so with it the generator, not the collector, would be the limit.


@dataclass
class GeneratorResult:
    """One generator process's phase: statuses and the markers answered 2xx."""

    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    no_answer: int = 0  # transport errors: the answer is unknown
    unsent: int = 0  # due, but the phase's bound ended first (open loop)
    max_backlog: int = 0  # open loop: most requests due and not yet sent

    def merge(self, other: GeneratorResult) -> None:
        self.seconds = max(self.seconds, other.seconds)
        self.statuses.update(other.statuses)
        self.accepted.extend(other.accepted)
        self.no_answer += other.no_answer
        self.unsent += other.unsent
        self.max_backlog += other.max_backlog


def _wire(request: MarkedRequest) -> bytes:
    head = [f"{request.method} {request.target} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in request.headers.items()]
    if request.method == "POST":
        head.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + request.body


class _Connection:
    IDLE_REOPEN_S = 2.0  # uvicorn closes idle keep-alive connections after 5 s

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.last_used = 0.0

    async def exchange(self, payload: bytes) -> int:
        # A connection idle long enough that the server may be closing it is replaced
        # first: a request lost to that race would have no known answer.
        if self.streams is not None and time.monotonic() - self.last_used > self.IDLE_REOPEN_S:
            self.close()
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        try:
            writer.write(payload)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
                assert name.strip().lower() != b"transfer-encoding", "chunked answer"
            if length:
                await reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        self.last_used = time.monotonic()
        return int(head[9:12])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class _Phase:
    def __init__(self, port: int, worker: int, tag: str) -> None:
        self.port, self.worker, self.tag = port, worker, tag
        self.result = GeneratorResult()
        self.sequence = 0

    def next_request(self) -> tuple[str, bytes]:
        n = self.sequence
        self.sequence += 1
        marker = f"w{self.worker}{self.tag}{n}"
        # Three browser page views to one GA4 MP event, from varied addresses.
        protocol = "ga4mp" if n % 4 == 3 else "plainsignal"
        return marker, _wire(marked_request(protocol, marker, n + 1000 * self.worker))

    async def send(self, connection: _Connection, marker: str, payload: bytes) -> None:
        try:
            status = await connection.exchange(payload)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.result.no_answer += 1
            return
        self.result.statuses[status] += 1
        if 200 <= status < 300:
            self.result.accepted.append(marker)


async def _closed_loop(
    port: int, worker: int, step: int, connections: int, seconds: float, pool: list[_Connection]
) -> GeneratorResult:
    """Each of `connections` sends its next request as soon as the last is answered."""
    phase = _Phase(port, worker, f"c{step}x")
    began = time.monotonic()
    deadline = began + seconds

    async def run(connection: _Connection) -> None:
        while time.monotonic() < deadline:
            await phase.send(connection, *phase.next_request())

    await asyncio.gather(*(run(connection) for connection in pool[:connections]))
    phase.result.seconds = time.monotonic() - began
    return phase.result


async def _open_loop(
    port: int, worker: int, rate: float, seconds: float, pool: list[_Connection], drain_s: float
) -> GeneratorResult:
    """Requests fall due at `rate` a second whatever the answers (open loop); free
    connections take them in order. Requests still due `drain_s` after the phase's end are
    not sent (counted as unsent); those in flight then are answered first."""
    phase = _Phase(port, worker, "o")
    due: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
    began = time.monotonic()
    closing = False

    async def pace() -> None:
        scheduled = 0
        while (elapsed := time.monotonic() - began) < seconds:
            while scheduled < elapsed * rate:
                due.put_nowait(phase.next_request())
                scheduled += 1
            phase.result.max_backlog = max(phase.result.max_backlog, due.qsize())
            # Pacing (the open loop's clock), not synchronisation.
            await asyncio.sleep(min(0.005, max(0.0, scheduled / rate - elapsed)))
        for _ in pool:
            due.put_nowait(None)

    async def run(connection: _Connection) -> None:
        while not closing and (item := await due.get()) is not None:
            await phase.send(connection, *item)

    runners = [asyncio.ensure_future(run(connection)) for connection in pool]
    await pace()
    _, pending = await asyncio.wait(runners, timeout=drain_s)
    closing = True  # past the bound: answer what is in flight, send nothing more
    _, pending = await asyncio.wait(pending, timeout=60) if pending else (set(), set())
    for runner in pending:
        runner.cancel()
        phase.result.no_answer += 1  # its request's answer never came
    phase.result.unsent = sum(1 for _ in range(due.qsize()) if due.get_nowait() is not None)
    phase.result.seconds = time.monotonic() - began
    return phase.result


def _generator_process(
    port: int,
    worker: int,
    connections: int,
    steps: list[tuple[int, float]],
    barrier: Barrier,
    rates: Queue[float | None],
    results: Queue[tuple[str, int, GeneratorResult]],
    hold_s: float,
    drain_s: float,
) -> None:
    async def main() -> None:
        pool = [_Connection(port) for _ in range(connections)]
        results.put(("ready", worker, GeneratorResult()))  # imports done: measure from here
        # Both processes start each step together, so their rates add up.
        for step, (step_connections, seconds) in enumerate(steps):
            await asyncio.to_thread(barrier.wait, 120)
            result = await _closed_loop(port, worker, step, step_connections, seconds, pool)
            results.put((f"step{step}", worker, result))
        rate = await asyncio.to_thread(rates.get, True, 120)
        if rate is not None:
            result = await _open_loop(port, worker, rate, hold_s, pool, drain_s)
            results.put(("hold", worker, result))
        for connection in pool:
            connection.close()

    asyncio.run(main())


class LoadGenerator:
    """`processes` generator processes on loopback: closed-loop steps to measure the
    maximum, then an open-loop hold at a chosen rate."""

    def __init__(
        self,
        port: int,
        processes: int,
        connections: int,
        steps: list[tuple[int, float]],
        hold_s: float,
        drain_s: float,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of pytest's threads
        self.steps = steps
        self.results: Queue[tuple[str, int, GeneratorResult]] = context.Queue()
        self.rates: list[Queue[float | None]] = []
        # Kept on self: the children open its semaphore after start() returns.
        self.barrier = context.Barrier(processes)
        self.processes: list[BaseProcess] = []
        for worker in range(processes):
            rates: Queue[float | None] = context.Queue()
            self.rates.append(rates)
            self.processes.append(
                context.Process(
                    target=_generator_process,
                    args=(
                        port,
                        worker,
                        connections,
                        steps,
                        self.barrier,
                        rates,
                        self.results,
                        hold_s,
                        drain_s,
                    ),
                    daemon=True,
                )
            )

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def cpu_seconds(self) -> float:
        """CPU time all generator processes have used so far."""
        return sum(cpu_seconds(process.pid) for process in self.processes if process.pid)

    def collect(
        self, phase: str, timeout_s: float, sample: Callable[[], None] = lambda: None
    ) -> GeneratorResult:
        """Every process's result for `phase`, merged; `sample()` runs about once a second
        while waiting."""
        merged = GeneratorResult()
        deadline = time.monotonic() + timeout_s
        for _ in self.processes:
            while True:
                assert time.monotonic() < deadline, f"load generator: no {phase} within bound"
                try:
                    name, _, result = self.results.get(timeout=1.0)
                    break
                except queue.Empty:
                    dead = [p.exitcode for p in self.processes if p.exitcode not in (None, 0)]
                    assert not dead, f"load generator process failed (exit {dead})"
                    sample()
            assert name == phase, (name, phase)
            merged.merge(result)
        return merged

    def hold(self, total_rate: float | None) -> None:
        for rates in self.rates:
            rates.put(None if total_rate is None else total_rate / len(self.rates))

    def stop(self) -> None:
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
