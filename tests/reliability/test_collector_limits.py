"""A client cannot exhaust a collector process: each attack against a real `sessionflow
collect`, its memory read from /proc and its connections from the client's side.

Kafka is away for every collector here (nothing listens on its port), so whatever the
buffer takes stays in its memory. Two collectors serve the module: one for the connection
attacks (short deadlines), one for the memory attacks, each measured from just before it;
the sink's byte bound has its own. Figures are printed (`-s`).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.conftest import RunningCollector, collector_env, start_collector
from tests.reliability.collector_support import CHROME, health, rss_mb, wait_until

MB = 1 << 20
MAX_HEADER_BYTES = 16 * 1024  # collector.max_header_bytes's default
GA4 = '{"shop.example" = {measurement_id = "G-SHOP1234"}}'


@contextmanager
def collector_without_kafka(directory: Path, **settings: str) -> Iterator[RunningCollector]:
    env = collector_env(
        f"127.0.0.1:{free_port()}",  # Kafka away: nothing listens here
        directory / "data",
        free_port(),
        "limits",
        SESSIONFLOW_GA4=GA4,
        **settings,
    )
    running = start_collector(env, directory / "collector.log")
    try:
        yield running
    finally:
        # SIGKILL, not a clean stop: a clean one would wait for the absent Kafka, then
        # spill the buffer (tested elsewhere, test_collector_kafka_outage); here it only
        # cost the suite half a minute.
        running.process.kill()
        running.process.wait(timeout=30)


# The connection attacks' collector: deadlines short enough for a fast test.
HEADER_TIMEOUT_S = 3.0
BODY_TIMEOUT_S = 2.0
KEEP_ALIVE_S = 1
MAX_CONNECTIONS = 100
BUFFER_MAX_BYTES = 4 * MB


@pytest.fixture(scope="module")
def connections_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    settings = {
        "SESSIONFLOW_COLLECTOR__HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT_S),
        "SESSIONFLOW_COLLECTOR__BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT_S),
        "SESSIONFLOW_COLLECTOR__KEEP_ALIVE_SECONDS": str(KEEP_ALIVE_S),
        "SESSIONFLOW_COLLECTOR__MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        # The sink's test: bounded in bytes, not in events.
        "SESSIONFLOW_COLLECTOR__BUFFER_MAX_BYTES": str(BUFFER_MAX_BYTES),
        "SESSIONFLOW_COLLECTOR__BUFFER_MAX_EVENTS": "1000000",
    }
    with collector_without_kafka(tmp_path_factory.mktemp("connections"), **settings) as running:
        yield running


@pytest.fixture(scope="module")
def memory_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    with collector_without_kafka(tmp_path_factory.mktemp("memory")) as running:
        yield running


def port_of(collector: RunningCollector) -> int:
    return int(collector.url.rsplit(":", 1)[1])


def connect(collector: RunningCollector) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(collector)), timeout=30)


def answer_of(connection: socket.socket) -> bytes:
    """What the server sent before it closed, or b"" when it reset the connection."""
    received = b""
    try:
        while chunk := connection.recv(65_536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def closed_by_server(connection: socket.socket) -> bool:
    """Whether the server has closed `connection`; reads what it sent, without waiting."""
    while select.select([connection], [], [], 0)[0]:
        try:
            if connection.recv(65_536) == b"":
                return True
        except ConnectionResetError:
            return True
    return False


def warmed_rss(collector: RunningCollector, requests: Callable[[httpx.Client], object]) -> float:
    """The collector's RSS once a few ordinary requests of the attack's kind have run
    (lazy imports, the parsers' first use), so that what grows after is the attack's."""
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        for _ in range(20):
            requests(http)
    return rss_mb(collector.process.pid)


def rss_growth(
    collector: RunningCollector, request: Callable[[httpx.Client, int], object], times: int
) -> float:
    """How much the collector's RSS grows (MB) over `times` requests `request(http, n)`."""
    before = warmed_rss(collector, lambda http: request(http, -1))
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        for n in range(times):
            request(http, n)
    return rss_mb(collector.process.pid) - before


def page_view(http: httpx.Client, url: str = "https://shop.example/", **extra: str) -> int:
    body = {"name": "page_view", "url": url, **extra}
    headers = {"user-agent": CHROME, "content-type": "text/plain"}
    return http.post("/api/event", content=json.dumps(body), headers=headers).status_code


def raw_answer(collector: RunningCollector, request: bytes) -> bytes:
    """Send `request` on a connection of its own; what came back before the server closed
    (b"" when it reset the connection while the request was still being sent)."""
    with connect(collector) as connection:
        try:
            connection.sendall(request)
        except OSError:
            return b""
        return answer_of(connection)


# -- headers (memory collector first: its baseline is its own) ------------------------------


def test_a_never_ending_header_is_cut_off_at_its_bound(memory_collector: RunningCollector) -> None:
    before = warmed_rss(memory_collector, lambda http: http.get("/health"))
    sent = 0
    with connect(memory_collector) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        try:
            while sent < 96 * MB:
                connection.sendall(b"a" * 65_536)
                sent += 65_536
        except OSError:  # reset: the server stopped reading and closed
            pass
        answer = answer_of(connection)
    grown = rss_mb(memory_collector.process.pid) - before
    print(f"\nnever-ending header: {sent / MB:.1f} MB taken of 96 MB, RSS +{grown:.1f} MB")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    # The kernel's socket buffers take a few MB before the server even reads.
    assert sent < 16 * MB
    assert grown < 8
    assert health(memory_collector.url)["status"] == "ok"


def test_headers_over_the_bound_get_431_and_under_it_an_answer(
    connections_collector: RunningCollector,
) -> None:
    def head_with(header_bytes: int) -> bytes:
        return raw_answer(
            connections_collector,
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
            + b"a" * header_bytes
            + b"\r\n\r\n",
        )

    assert head_with(MAX_HEADER_BYTES - 1024).startswith(b"HTTP/1.1 200 ")
    assert head_with(64 * 1024).startswith(b"HTTP/1.1 431 ")
    # 8 MB: refused while it is still being sent (a 431, or a reset: never an answer).
    eight_mb = head_with(8 * MB)
    print(f"\n8 MB header: answered {eight_mb[:12]!r}")
    assert eight_mb == b"" or eight_mb.startswith(b"HTTP/1.1 431 ")


def slowest_health_while(collector: RunningCollector, attack: Callable[[], object]) -> float:
    """The slowest /health answer (s) while `attack()` runs: whether the loop stays free."""
    slowest, done = 0.0, threading.Event()

    def poll() -> None:
        nonlocal slowest
        with httpx.Client(base_url=collector.url, timeout=30) as http:
            while not done.is_set():
                began = time.monotonic()
                http.get("/health")
                slowest = max(slowest, time.monotonic() - began)
                done.wait(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        attack()
    finally:
        done.set()
        poller.join()
    return slowest


CHUNKED_HEAD = (
    b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.parametrize(
    ("shape", "trailers"),
    [("many trailer lines", b"a:b\r\n" * 13_107), ("one endless trailer", b"a" * 65_535)],
)
def test_chunked_trailers_are_cut_off_at_their_bound(
    memory_collector: RunningCollector, shape: str, trailers: bytes
) -> None:
    before = warmed_rss(memory_collector, lambda http: http.get("/health"))
    sent, answer = 0, b""

    def attack() -> None:
        nonlocal sent, answer
        with connect(memory_collector) as connection:
            connection.settimeout(10)
            endless = shape == "one endless trailer"
            connection.sendall(CHUNKED_HEAD + b"2\r\n{}\r\n0\r\n" + b"x: " * endless)
            try:
                while sent < 30 * MB:
                    connection.sendall(trailers)
                    sent += len(trailers)
            except OSError:  # reset, or (unbounded) a server too busy to read for 10 s
                pass
            try:
                answer = answer_of(connection)
            except TimeoutError:
                answer = b"(none in 10 s)"

    began = time.monotonic()
    slowest = slowest_health_while(memory_collector, attack)
    took = time.monotonic() - began
    grown = rss_mb(memory_collector.process.pid) - before
    print(
        f"\n{shape}: {sent / MB:.1f} MB taken of 30 MB in {took:.1f} s, RSS +{grown:.1f} MB, "
        f"slowest /health {slowest:.2f} s, answered {answer[:12]!r}"
    )
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413 ")
    assert sent < 16 * MB  # the kernel's socket buffers take a few MB
    assert grown < 8
    assert took < 10  # closed at the bound, not by the body's 20 s deadline
    assert slowest < 1


def test_a_chunked_ga4_body_under_its_limit_is_answered(
    memory_collector: RunningCollector,
) -> None:
    # 125 kB (GA4's limit is 130 kB, over collector.max_body_bytes's 64 kB) in 16-byte
    # chunks: their framing adds over a third. The body goes once the server asks for it
    # (100 Continue), so that all of it is counted as what came after the head.
    event = {"name": "page_view", "params": {"page_location": "https://shop.example/"}}
    body = json.dumps({"client_id": "1.2", "events": [event]}).encode()
    body = body[:-1] + b" " * (125_000 - len(body)) + b"}"
    pieces = [body[i : i + 16] for i in range(0, len(body), 16)]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    with connect(memory_collector) as connection:
        connection.sendall(
            b"POST /mp/collect?measurement_id=G-SHOP1234 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        proceed = b""
        while b"\r\n\r\n" not in proceed and (read := connection.recv(65_536)):
            proceed += read
        assert proceed.startswith(b"HTTP/1.1 100 ")
        connection.sendall(chunks + b"0\r\nx-trailer: dropped\r\n\r\n")
        answer = answer_of(connection)
    print(f"\na chunked 125 kB GA4 body ({len(chunks) / 1000:.0f} kB framed): {answer[:12]!r}")
    assert answer.startswith(b"HTTP/1.1 204 ")


def test_a_client_leaving_mid_body_is_counted_without_a_traceback(
    connections_collector: RunningCollector,
) -> None:
    outcome = "rejected:client_disconnected"
    counted = health(connections_collector.url)["outcomes"].get(outcome, 0)
    for _ in range(3):
        with connect(connections_collector) as connection:
            connection.sendall(
                b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                b'Content-Length: 100\r\n\r\n{"na'
            )

    def settled() -> bool:
        count = health(connections_collector.url)["outcomes"].get(outcome, 0)
        return count == counted + 3 or "ClientDisconnect" in connections_collector.log_text()

    wait_until(settled, 10, "three clients leaving mid-body counted or logged")
    log = connections_collector.log_text()
    # (Kafka is away: its client logs errors of its own.)
    for sign in ("Traceback", "ClientDisconnect", "Exception in ASGI application"):
        assert sign not in log
    assert health(connections_collector.url)["outcomes"][outcome] == counted + 3


# -- slow clients ----------------------------------------------------------------------------


def test_dripping_connections_are_closed_at_the_header_deadline(
    connections_collector: RunningCollector,
) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    connections = [connect(connections_collector) for _ in range(60)]
    began = time.monotonic()
    held = set(range(60))
    dripped = 0
    next_drip = began

    def all_closed() -> bool:
        nonlocal dripped, next_drip
        if time.monotonic() >= next_drip:  # one byte every 2 s on each connection
            for n in list(held):
                try:
                    connections[n].sendall(head[dripped : dripped + 1])
                except OSError:
                    held.discard(n)
            dripped += 1
            next_drip += 2.0
        held.difference_update([n for n in held if closed_by_server(connections[n])])
        return not held

    try:
        wait_until(all_closed, HEADER_TIMEOUT_S + 20, "every dripping connection closed")
        took = time.monotonic() - began
    finally:
        for connection in connections:
            connection.close()
    print(
        f"\n60 dripping connections: all closed after {took:.1f} s (deadline {HEADER_TIMEOUT_S} s)"
    )
    assert took >= HEADER_TIMEOUT_S - 0.5  # by the deadline, not at once
    assert health(connections_collector.url)["status"] == "ok"


def test_a_late_body_gets_408_and_its_connection_is_closed(
    connections_collector: RunningCollector,
) -> None:
    with connect(connections_collector) as connection:
        connection.sendall(
            b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        began = time.monotonic()
        answer = answer_of(connection)  # until the server closes
        took = time.monotonic() - began
    print(f"\na body that never ends: {answer[:12]!r} after {took:.1f} s, then closed")
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"body_timeout"' in answer
    assert BODY_TIMEOUT_S - 0.5 <= took < HEADER_TIMEOUT_S + 10


def test_an_unread_body_cannot_hold_the_connection(
    connections_collector: RunningCollector,
) -> None:
    # An unknown site is answered before its body is read. The rest of the body, dripped
    # after the answer (each byte restarts uvicorn's keep-alive timer), must come within
    # the next request's header deadline, or the connection closes.
    with connect(connections_collector) as connection:
        connection.sendall(
            b"POST /g/collect?v=2&tid=G-NOPE0000 HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 100000\r\n\r\nen=x"
        )
        answer = b""
        while b'"unknown_site"' not in answer:
            answer += connection.recv(65_536)
        began = time.monotonic()
        next_drip = began

        def closed() -> bool:
            nonlocal next_drip
            if time.monotonic() >= next_drip:
                try:
                    connection.sendall(b"x")
                except OSError:
                    return True
                next_drip += 0.5
            return closed_by_server(connection)

        wait_until(closed, HEADER_TIMEOUT_S + 20, "a dripping unread body's connection closed")
        took = time.monotonic() - began
    print(f"\nan unread body dripped after the answer: closed after {took:.1f} s")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert took >= HEADER_TIMEOUT_S - 0.5


def test_connections_beyond_the_cap_get_503_and_idle_ones_are_let_go(
    connections_collector: RunningCollector,
) -> None:
    # Keep-alive connections, idle after an answer each, count against the cap.
    idle = [connect(connections_collector) for _ in range(MAX_CONNECTIONS)]
    try:
        for connection in idle:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert connection.recv(65_536).startswith(b"HTTP/1.1 200 ")
        refused = raw_answer(connections_collector, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        print(f"\nconnection {MAX_CONNECTIONS + 1} of a cap of {MAX_CONNECTIONS}: {refused[:12]!r}")
        assert refused.startswith(b"HTTP/1.1 503 ")
        # The keep-alive timeout frees them, sooner than the header deadline would.
        began = time.monotonic()
        wait_until(lambda: all(closed_by_server(c) for c in idle), 20, "idle connections closed")
        took = time.monotonic() - began
        assert took < HEADER_TIMEOUT_S
    finally:
        for connection in idle:
            connection.close()
    assert health(connections_collector.url)["status"] == "ok"


# -- caches ----------------------------------------------------------------------------------


def test_long_param_names_are_not_remembered(memory_collector: RunningCollector) -> None:
    def validate(http: httpx.Client, n: int) -> None:
        params = {f"p{n}_{k}_" + "x" * 10_000: 1 for k in range(4)}
        body = json.dumps({"client_id": "1.2", "events": [{"name": "view", "params": params}]})
        answer = http.post("/debug/mp/collect?measurement_id=G-SHOP1234", content=body)
        assert answer.json()["validationMessages"][0]["validationCode"] == "NAME_INVALID"

    grown = rss_growth(memory_collector, validate, 1000)
    print(f"\n1,000 /debug/mp/collect requests, 4 names of 10 kB each: RSS +{grown:.1f} MB")
    assert grown < 10


def test_long_urls_do_not_fill_memory(memory_collector: RunningCollector) -> None:
    # gtag.js batches of 12 page views, each with a page and a referrer of 2 kB: scrubbed,
    # then rejected (an unknown currency), so the URLs reach the scrubbing cache and the
    # events never reach the buffer.
    def rejected_views(http: httpx.Client, n: int) -> None:
        lines = []
        for line in range(12):
            url = f"https://shop.example/{n}/{line}/" + "p" * 2000
            dr = url.replace("shop", "ref")
            lines.append(urlencode({"en": "page_view", "dl": url, "dr": dr, "cu": "ZZZ"}))
        answer = http.post(
            "/g/collect?v=2&tid=G-SHOP1234&cid=1.2",
            content="\n".join(lines),
            headers={"user-agent": CHROME, "content-type": "text/plain"},
        )
        assert answer.status_code == 400 and answer.json()["accepted"] == 0

    grown = rss_growth(memory_collector, rejected_views, 125)
    print(f"\n1,500 page views of two 2 kB URLs each: RSS +{grown:.1f} MB")
    assert grown < 8


def test_an_unknown_measurement_id_is_answered_before_its_body_is_read(
    memory_collector: RunningCollector,
) -> None:
    bad_body = b"{" * 1000  # read, it would be a bad_json finding
    with httpx.Client(base_url=memory_collector.url, timeout=30) as http:
        debug = http.post("/debug/mp/collect?measurement_id=G-NOPE0000", content=bad_body)
        paths = [message["fieldPath"] for message in debug.json()["validationMessages"]]
        assert paths == ["measurement_id"]
        collect = http.post("/mp/collect?measurement_id=G-NOPE0000", content=bad_body)
        assert collect.json()["reason"] == "unknown_site"
        lines = b"\n".join([b"en=page_view"] * 30)  # 30 lines: too_many_events, if read
        gtag = http.post("/g/collect?v=2&tid=G-NOPE0000&cid=1.2", content=lines)
        assert gtag.json()["reason"] == "unknown_site"


# -- the Kafka sink's buffer -------------------------------------------------------------------


def test_the_buffer_is_bounded_in_bytes_while_kafka_is_away(
    connections_collector: RunningCollector,
) -> None:
    collector, bound = connections_collector, BUFFER_MAX_BYTES

    def large_view(http: httpx.Client, n: int = 0) -> int:
        # 25 events as large as GA4's limits let them be: long pages, referrers, campaigns.
        params = {
            "page_location": f"https://shop.example/{n}/" + "p" * 960,
            "page_referrer": "https://ref.example/" + "r" * 390,
            **{name: "c" * 100 for name in ("source", "medium", "campaign", "term", "content")},
        }
        events = [{"name": "page_view", "params": params}] * 25
        body = json.dumps({"client_id": f"{n}.1", "events": events})
        return http.post("/mp/collect?measurement_id=G-SHOP1234", content=body).status_code

    before = warmed_rss(collector, page_view)
    statuses: list[int] = []
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        # About 30 requests fill 4 MB; unbounded, 300 would hold 40 MB.
        while 503 not in statuses[-1:] and len(statuses) < 300:
            statuses.append(large_view(http, len(statuses)))
        refused = [large_view(http) for _ in range(3)]
    pending = health(collector.url)["pending_bytes"]
    grown = rss_mb(collector.process.pid) - before
    print(
        f"\nKafka away: {len(statuses) - 1} requests of 25 large events taken, then 503; buffer "
        f"{pending / MB:.2f} MB of {bound / MB:.0f} MB, RSS +{grown:.1f} MB"
    )
    assert statuses[-1] == 503 and refused == [503] * 3
    assert bound - 25 * 8 * 1024 < pending <= bound
    assert grown < bound / MB * 2 + 5
