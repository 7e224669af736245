"""Fuzzing the collector's dialects: every endpoint it serves (`/api/event` for PlainSignal
and Plausible bodies, GA4's `/mp/collect` and `/debug/mp/collect`, gtag's `/g/collect`,
`/t.js`, `/health`) gets hostile bodies, query strings and headers. Every input is
answered 2xx, or 4xx with a named reason: never a 5xx, never a traceback in the log.
Valid events in the same request as bad ones (GA4 batches, gtag's multi-line bodies)
still land on the topic, counted by a unique marker each carries.

In process, through the ASGI app with its real Kafka sink on the session's broker; then
a smaller hostile set against a real `sessionflow collect` process and its log.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from pipeline.collector.app import create_app
from pipeline.collector.ga4 import ValidationCode
from pipeline.config import Settings, load_settings
from pipeline.events.reasons import Reason
from pipeline.kafka.topics import ensure_topics
from tests.integration.conftest import events_of, read_topic, running_collector
from tests.reliability.json_strategies import (
    CONFUSABLE_SITES,
    SQL_LIKE,
    dumps,
    hostile_text,
    json_values,
    mutated_bytes,
    mutated_object,
)
from tests.reliability.support import Outcomes, fuzz_settings

# kafka-python's own threads (the sink's producer) draw from the global `random` while
# hypothesis generates an example; hypothesis warns of it, and its draws are unaffected.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module")
OUTCOMES = Outcomes()  # per request: endpoint and answer
LANDED = Outcomes()  # valid events sent beside bad ones, and found on the topic
REASONS = frozenset(Reason)
CODES = frozenset(ValidationCode)
MEASUREMENT_ID = "G-SHOP1234"
SECRET = "blog-secret-1"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_markers = itertools.count()


def marker(kind: str) -> str:
    return f"fz-{kind}-{next(_markers)}"


# -- the app, on the real broker -------------------------------------------------------------


def collector_environ(bootstrap: str, data_dir: Path, prefix: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SESSIONFLOW_DATA_DIR": str(data_dir),
        "SESSIONFLOW_SITES": '["shop.example", "blog.example"]',
        "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"{prefix}.events",
        "SESSIONFLOW_KAFKA__DLQ_TOPIC": f"{prefix}.events.dlq",
        "SESSIONFLOW_KAFKA__PARTITIONS": "2",
        # shop.example is named by its measurement id; blog.example by its site id, and
        # its Measurement Protocol requests need an api_secret.
        "SESSIONFLOW_GA4": (
            f'{{"shop.example" = {{measurement_id = "{MEASUREMENT_ID}"}}, '
            f'"blog.example" = {{api_secret = "{SECRET}"}}}}'
        ),
        # The in-process client's address (AppClient) stands for a trusted proxy.
        "SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES": '["192.0.2.50"]',
        "SESSIONFLOW_PRIVACY__COUNTRY_HEADER": "CF-IPCountry",
    }


class _Recorder(logging.Handler):
    """Every log record at warning or above, or carrying an exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.WARNING:
            self.records.append(record)


@pytest.fixture(scope="module")
def settings(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("fuzz-collector")
    prefix = f"test.{uuid.uuid4().hex[:10]}"
    loaded = load_settings(environ=collector_environ(kafka_bootstrap, data / "data", prefix))
    ensure_topics(loaded.kafka)
    return loaded


RECORDER = _Recorder()


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    print("\n" + OUTCOMES.line("collector dialects"))
    targets = sorted({key.rsplit(": ", 1)[0] for key in LANDED.counts})
    for target in targets:
        sent, landed = LANDED.counts[f"{target}: sent"], LANDED.counts[f"{target}: on the topic"]
        print(f"valid events beside bad ones, {target}: sent {sent}, on the topic {landed}")


class AppClient:
    """Synchronous requests to the ASGI app in process, its lifespan (the Kafka sink's
    start, and its flush at the end) run as a server runs it. An exception in the app is
    raised here, never turned into a 500."""

    def __init__(self, app: Starlette, portal: BlockingPortal) -> None:
        self.app = app
        self.portal = portal
        transport = httpx.ASGITransport(app=app, client=("192.0.2.50", 50_000))
        self.http = httpx.AsyncClient(transport=transport, base_url="http://collector")

    def request(
        self,
        method: str,
        url: str,
        content: bytes | AsyncIterator[bytes] | None = None,
        headers: dict[str, bytes] | None = None,
    ) -> httpx.Response:
        raw = [(name.encode(), value) for name, value in (headers or {}).items()]
        call = functools.partial(self.http.request, method, url, content=content, headers=raw)
        return self.portal.call(call)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[AppClient]:
    """The app with its real Kafka sink (started and flushed by the app's lifespan)."""
    app = create_app(settings)
    logging.getLogger().addHandler(RECORDER)
    try:
        with ExitStack() as stack:
            portal = stack.enter_context(start_blocking_portal())
            stack.enter_context(portal.wrap_async_context_manager(app.router.lifespan_context(app)))
            app_client = AppClient(app, portal)
            stack.callback(portal.call, app_client.http.aclose)
            yield app_client
    finally:
        logging.getLogger().removeHandler(RECORDER)


def assert_quiet_log() -> None:
    logged = [
        f"{r.name} {r.levelname}: {r.getMessage()[:200]}"
        for r in RECORDER.records
        # kafka-python's own warnings (a slow broker) are not the collector's errors.
        if r.name.startswith(("pipeline", "starlette", "uvicorn", "asyncio", "anyio"))
        or (r.exc_info and not r.name.startswith("kafka"))
    ]
    assert not logged, logged


# -- what every answer must be ---------------------------------------------------------------


def judged(response: httpx.Response, endpoint: str) -> str:
    """2xx, or 4xx with a named reason (a route or method that does not exist: 404/405).
    Counts the outcome under the endpoint; returns it."""
    status = response.status_code
    assert 200 <= status < 300 or 400 <= status < 500, (status, response.text[:300])
    assert "traceback" not in response.text.lower()
    assert "set-cookie" not in response.headers
    if status in (404, 405):
        outcome = f"{status} no such route"
    elif status >= 400:
        answer = response.json()
        assert answer["reason"] in REASONS, answer
        assert isinstance(answer["error"], str) and "\n" not in answer["error"], answer
        for problem in answer.get("rejected", []):
            assert problem["reason"] in REASONS, problem
        outcome = answer["reason"]
    elif endpoint == "/debug/mp/collect":
        messages = response.json()["validationMessages"]
        for message in messages:
            assert message["validationCode"] in CODES, message
        outcome = "valid" if not messages else f"200 {messages[0]['validationCode']}"
    else:
        outcome = f"{status}"
    OUTCOMES.add(f"{endpoint} {outcome}")
    return outcome


def send(
    client: AppClient,
    method: str,
    path: str,
    query: str = "",
    body: bytes | None = None,
    headers: dict[str, bytes] | None = None,
) -> httpx.Response:
    url = f"{path}?{query}" if query else path
    return client.request(method, url, content=body, headers=headers)


# -- hostile pieces --------------------------------------------------------------------------


def header_value(text: str) -> bytes:
    # What a raw HTTP header can carry (a server refuses CR, LF and NUL before any app).
    raw = text.encode("utf-8", "surrogatepass")
    return raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")


CONTENT_TYPES = [
    "text/plain", "application/json", "text/plain;charset=UTF-8", "", "text/html",
    "application/json; charset=utf-16", "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded", "APPLICATION/JSON", "application/json\u0000",
    "text/plain; " + "x" * 5000,
]  # fmt: skip
IPS = [
    "192.0.2.10", "198.51.100.7, 10.0.0.1", "203.0.113.9", "2001:db8::1", "not-an-ip", "",
    "999.999.999.999", "127.0.0.1' OR '1'='1", "::ffff:192.0.2.1", "192.0.2.1" * 500,
]  # fmt: skip


@st.composite
def request_headers(draw: st.DrawFn, content_type: bool = True) -> dict[str, bytes]:
    headers: dict[str, bytes] = {}
    if content_type and draw(st.integers(0, 4)):
        headers["content-type"] = header_value(draw(st.sampled_from(CONTENT_TYPES)))
    headers["user-agent"] = header_value(
        draw(st.one_of(st.sampled_from([CHROME, CHROME, GOOGLEBOT, ""]), hostile_text))
    )
    if draw(st.booleans()):
        headers["x-forwarded-for"] = header_value(draw(st.sampled_from(IPS) | hostile_text))
    if draw(st.booleans()):
        country = st.sampled_from(["DE", "ZZ", "de", "T1", "XX", "\u0414\u0415"]) | hostile_text
        headers["cf-ipcountry"] = header_value(draw(country))
    if draw(st.integers(0, 5)) == 0:
        headers[draw(st.sampled_from(["dnt", "sec-gpc"]))] = b"1"
    if draw(st.integers(0, 5)) == 0:
        headers["origin"] = header_value(draw(st.sampled_from(["https://shop.example", "null"])))
    return headers


def query_string(params: list[tuple[str, str]]) -> str:
    return urlencode(params, encoding="utf-8", errors="surrogatepass")


def raw_query(text: str) -> str:
    """Any text as a query string, its structure (&, =, %) kept as it is."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="&=%+;/?:@")


SITE_NAMES = [
    MEASUREMENT_ID, "shop.example", "blog.example", "g-shop1234", "G-NOPE0000", "",
    *CONFUSABLE_SITES, *SQL_LIKE,
]  # fmt: skip
site_names = st.sampled_from(SITE_NAMES) | hostile_text


# -- /api/event: PlainSignal and Plausible bodies ---------------------------------------------

PLAIN = {"name": "page_view", "url": "https://shop.example/p?utm_campaign=spring"}
PLAUSIBLE: dict[str, Any] = {
    "n": "pageview", "u": "https://shop.example/p", "d": "shop.example", "r": None,
    "p": {"transaction_id": "T-1"}, "$": {"amount": "12.50", "currency": "EUR"},
}  # fmt: skip
API_KEYS = [
    "name", "url", "referrer", "value", "currency", "site_id", "n", "u", "d", "r", "p", "$",
    "i", "h", "w", "v", "e", "sd", "props", "revenue", "domain", "meta", "m", "interactive",
]  # fmt: skip


@st.composite
def api_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["plain", "plausible", "engagement", "value", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "value":
        return dumps(draw(json_values))
    bases: dict[str, dict[str, Any]] = {
        "plain": PLAIN,
        "plausible": PLAUSIBLE,
        "engagement": {**PLAUSIBLE, "n": "engagement", "e": 1534, "sd": 80},
    }
    base = bases[kind]
    body = draw(mutated_object(base, API_KEYS))
    if draw(st.booleans()):  # the site ids and campaigns a hostile client would try
        body[draw(st.sampled_from(["site_id", "d", "url", "u"]))] = draw(site_names)
    data = dumps(body, ensure_ascii=draw(st.booleans()))
    return draw(mutated_bytes(data)) if draw(st.integers(0, 3)) == 0 else data


@fuzz_settings(900)
@given(body=api_bodies(), headers=request_headers())
def test_api_event_bodies(client: AppClient, body: bytes, headers: dict[str, bytes]) -> None:
    judged(send(client, "POST", "/api/event", body=body, headers=headers), "/api/event")


def test_api_event_keeps_taking_valid_events_between_bad_ones(
    client: AppClient, settings: Settings
) -> None:
    urls: list[str] = []

    @fuzz_settings(150)
    @given(body=api_bodies(), headers=request_headers(), plausible=st.booleans())
    def bad_then_good(body: bytes, headers: dict[str, bytes], plausible: bool) -> None:
        judged(send(client, "POST", "/api/event", body=body, headers=headers), "/api/event")
        url = f"https://shop.example/fuzz/{marker('api')}"
        good = (
            {"n": "pageview", "u": url, "d": "shop.example"} if plausible else {**PLAIN, "url": url}
        )
        headers = {"content-type": b"text/plain", "user-agent": CHROME.encode()}
        answer = send(client, "POST", "/api/event", body=json.dumps(good).encode(), headers=headers)
        assert answer.status_code == 202 and judged(answer, "/api/event") == "202"
        urls.append(url)

    bad_then_good()
    assert_landed(client, settings, "page_url", urls, "/api/event, valid after a bad request")


# -- /mp/collect and /debug/mp/collect --------------------------------------------------------

GA4_EVENT: dict[str, Any] = {
    "name": "purchase",
    "params": {
        "page_location": "https://shop.example/checkout?utm_source=news",
        "value": 25.5, "currency": "EUR", "transaction_id": "T-9", "session_id": 123,
        "engagement_time_msec": "1200", "campaign": "spring",
    },
}  # fmt: skip
GA4_EVENT_KEYS = ["name", "params", "timestamp_micros", "items"]
GA4_PARAM_KEYS = [
    "page_location", "page_referrer", "value", "currency", "transaction_id", "session_id",
    "engagement_time_msec", "campaign", "source", "medium", "term", "content", "event_id",
    "items", "firebase_conversion", "ga_x", "page_title",
]  # fmt: skip
GA4_TOP_KEYS = [
    "client_id", "user_id", "timestamp_micros", "events", "user_properties", "device",
    "user_location", "non_personalized_ads", "consent",
]  # fmt: skip


@st.composite
def ga4_events(draw: st.DrawFn) -> object:
    """A GA4 event damaged: its keys, its params' keys and values, or its whole shape."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(json_values)
    if kind in (1, 2):
        return draw(mutated_object(GA4_EVENT, GA4_EVENT_KEYS))
    params = draw(mutated_object(GA4_EVENT["params"], GA4_PARAM_KEYS))
    if kind == 3:
        params["campaign"] = draw(st.sampled_from(SQL_LIKE) | hostile_text)
    name = draw(st.sampled_from(["purchase", "page_view", "session_start", "_x", "ga_x"]))
    return {"name": name, "params": params}


@st.composite
def ga4_requests(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    most = draw(st.sampled_from([3, 3, 3, 8, 27]))
    events = draw(st.lists(ga4_events(), min_size=0, max_size=most))
    base: dict[str, Any] = {"client_id": "c.1", "user_id": "u-1", "events": events}
    body = draw(mutated_object(base, GA4_TOP_KEYS)) if draw(st.booleans()) else base
    if draw(st.integers(0, 3)) == 0:
        entries = json_values | st.fixed_dictionaries({"value": json_values})
        body["user_properties"] = draw(st.dictionaries(hostile_text, entries, max_size=4))
    data = dumps(body, ensure_ascii=draw(st.booleans()))
    return draw(mutated_bytes(data)) if draw(st.integers(0, 3)) == 0 else data


@st.composite
def ga4_queries(draw: st.DrawFn) -> str:
    params: list[tuple[str, str]] = []
    kind = draw(st.integers(0, 9))
    if kind < 6:  # mostly a known site, so that the body is read
        params.append(("measurement_id", draw(st.sampled_from([MEASUREMENT_ID, "shop.example"]))))
    elif kind < 9:
        params.append(("measurement_id", draw(site_names)))
    if draw(st.booleans()):
        secret = st.sampled_from([SECRET, SECRET.upper(), "", "wrong"]) | hostile_text
        params.append(("api_secret", draw(secret)))
    if draw(st.integers(0, 5)) == 0:
        params.append((draw(hostile_text), draw(hostile_text)))
    text = query_string(params)
    if draw(st.integers(0, 7)) == 0:
        text += draw(st.sampled_from(["&%ZZ", "&measurement_id=%ff%fe", "&&&=", "%00", "#x"]))
    return text


@fuzz_settings(650)
@given(query=ga4_queries(), body=ga4_requests(), headers=request_headers())
def test_mp_collect(client: AppClient, query: str, body: bytes, headers: dict[str, bytes]) -> None:
    judged(send(client, "POST", "/mp/collect", query, body, headers), "/mp/collect")


@fuzz_settings(350)
@given(query=ga4_queries(), body=ga4_requests(), headers=request_headers())
def test_debug_mp_collect(
    client: AppClient, query: str, body: bytes, headers: dict[str, bytes]
) -> None:
    response = send(client, "POST", "/debug/mp/collect", query, body, headers)
    assert response.status_code in (200, 401, 403), response.text[:300]
    judged(response, "/debug/mp/collect")


@st.composite
def mixed_batches(draw: st.DrawFn) -> list[object | None]:
    """1..12 events, bad ones (request-level fields untouched) and valid ones (None: the
    sender fills in a valid event carrying a marker), at least one of each."""
    # Each bad event small enough that the request stays within GA4's body limit.
    small = ga4_events().filter(lambda event: len(dumps(event)) <= 10_000)
    bad = draw(st.lists(small, min_size=1, max_size=8))
    slots: list[object | None] = [*bad, *([None] * draw(st.integers(1, 4)))]
    return draw(st.permutations(slots))


def test_mp_collect_keeps_valid_events_beside_bad_ones(
    client: AppClient, settings: Settings
) -> None:
    markers: list[str] = []

    @fuzz_settings(250)
    @given(batch=mixed_batches(), ascii_only=st.booleans())
    def batch(batch: list[object | None], ascii_only: bool) -> None:
        sent = []
        events: list[object] = []
        for slot in batch:
            if slot is None:
                sent.append(marker("mp"))
                params = {
                    "event_id": sent[-1],
                    "page_location": "https://shop.example/a?utm_campaign=' OR 1=1 --",
                }
                events.append({"name": "page_view", "params": params})
            else:
                events.append(slot)
        body = dumps({"client_id": "c.2", "events": events}, ensure_ascii=ascii_only)
        answer = send(
            client,
            "POST",
            "/mp/collect",
            f"measurement_id={MEASUREMENT_ID}",
            body,
            {"content-type": b"application/json"},
        )
        judged(answer, "/mp/collect")
        assert answer.status_code in (204, 400), answer.text[:300]
        if answer.status_code == 400:
            assert answer.json()["accepted"] >= len(sent), answer.text[:300]
        markers.extend(sent)

    batch()
    assert_landed(client, settings, "event_id", markers, "/mp/collect batches")


# -- /g/collect -----------------------------------------------------------------------------

GTAG_KEYS = [
    "v", "tid", "cid", "uid", "sid", "en", "_et", "dl", "dr", "ir", "cu", "epn.value",
    "ep.value", "ep.currency", "ep.transaction_id", "ep.event_id", "ep.campaign", "sct",
    "seg", "_p", "dt", "ul", "up.x", "pr1",
]  # fmt: skip
GTAG_SHARED = [
    ("v", "2"), ("tid", MEASUREMENT_ID), ("cid", "111.222"), ("sid", "333"), ("en", "page_view"),
    ("dl", "https://shop.example/g?utm_source=ads&gclid=abc"), ("dr", "https://ref.example/"),
]  # fmt: skip
gtag_values = st.one_of(
    hostile_text,
    st.sampled_from(["2", "1", MEASUREMENT_ID, "page_view", "purchase", "1.5", "-1", "1e9999"]),
    st.sampled_from(SITE_NAMES),
)


@st.composite
def gtag_params(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Params of one event: shared ones, some replaced, dropped or added."""
    params = dict(GTAG_SHARED)
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(GTAG_KEYS) | hostile_text)
        if draw(st.integers(0, 3)) == 0:
            params.pop(key, None)
        else:
            params[key] = draw(gtag_values)
    return list(params.items())


@st.composite
def gtag_requests(draw: st.DrawFn) -> tuple[str, str, bytes | None]:
    method = draw(st.sampled_from(["GET", "POST", "POST", "HEAD"]))
    query = (
        query_string(draw(gtag_params()))
        if draw(st.integers(0, 5))
        else raw_query(draw(hostile_text))
    )
    if method != "POST":
        return method, query, None
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return method, query, draw(st.binary(max_size=300))
    if kind == 1:  # more lines than a request may carry
        return method, query, b"\n".join([b"en=page_view"] * draw(st.integers(26, 60)))
    lines = [query_string(draw(gtag_params())) for _ in range(draw(st.integers(0, 6)))]
    body = draw(st.sampled_from(["\n", "\r\n", "\r"])).join(lines).encode()
    if kind == 2:
        body = draw(mutated_bytes(body))
    return method, query, body


@fuzz_settings(800)
@given(request=gtag_requests(), headers=request_headers())
def test_gtag_collect(
    client: AppClient, request: tuple[str, str, bytes | None], headers: dict[str, bytes]
) -> None:
    method, query, body = request
    judged(send(client, method, "/g/collect", query, body, headers), "/g/collect")


@st.composite
def mixed_lines(draw: st.DrawFn) -> list[str | None]:
    """Bad event lines and valid ones (None: filled in with a marker), at least one each."""
    # Each bad line small enough that the body stays within collector.max_body_bytes.
    line = st.builds(query_string, gtag_params()).filter(lambda text: len(text) <= 6_000)
    bad = draw(st.lists(line, min_size=1, max_size=8))
    return draw(st.permutations([*bad, *([None] * draw(st.integers(1, 4)))]))


def test_gtag_keeps_valid_lines_beside_bad_ones(client: AppClient, settings: Settings) -> None:
    markers: list[str] = []

    @fuzz_settings(250)
    @given(lines=mixed_lines(), newline=st.sampled_from(["\n", "\r\n"]))
    def lines_of(lines: list[str | None], newline: str) -> None:
        sent, text = [], []
        for line in lines:
            if line is None:
                sent.append(marker("gtag"))
                text.append(query_string([("en", "page_view"), ("ep.event_id", sent[-1])]))
            else:
                text.append(line)
        query = query_string([("v", "2"), ("tid", MEASUREMENT_ID), ("cid", "444.555")])
        headers = {"content-type": b"text/plain", "user-agent": CHROME.encode()}
        answer = send(client, "POST", "/g/collect", query, newline.join(text).encode(), headers)
        judged(answer, "/g/collect")
        assert answer.status_code in (204, 400), answer.text[:300]
        if answer.status_code == 400:
            assert answer.json()["accepted"] >= len(sent), answer.text[:300]
        markers.extend(sent)

    lines_of()
    assert_landed(client, settings, "event_id", markers, "/g/collect multi-line bodies")


# -- other routes, methods and paths ----------------------------------------------------------


@fuzz_settings(150)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"]),
    path=st.sampled_from(
        ["/t.js", "/health", "/api/event", "/mp/collect", "/g/collect", "/", "/api/event/",
         "/../etc/passwd", "/t.js/../health", "/%2e%2e/%2e%2e/etc/passwd", "/api/%00",
         "/api/event;DROP", "/" + "a" * 5000]
    ),
    query=hostile_text,
    headers=request_headers(),
)  # fmt: skip
def test_any_route_and_method(
    client: AppClient, method: str, path: str, query: str, headers: dict[str, bytes]
) -> None:
    encoded = query_string([("q", query)])
    response = send(client, method, path, encoded, b"{}", headers)
    if response.status_code in (307, 308):
        # Starlette's redirect of a trailing slash to the route itself: harmless.
        assert path.endswith("/") and response.headers["location"].startswith(
            f"http://collector{path.rstrip('/')}?"
        ), response.headers
        OUTCOMES.add(f"{method} {path} {response.status_code} to the route without /")
        return
    judged(response, f"{method} {path[:24]}")


# -- a corpus of hostile requests -------------------------------------------------------------

TEN_MB = 10 << 20
_ga4_good = {"client_id": "c.3", "events": [{"name": "page_view"}]}
CORPUS: list[tuple[str, str, str, bytes]] = [
    # (name, path, query, body)
    ("10 MB body", "/api/event", "", b"x" * TEN_MB),
    ("10 MB string", "/api/event", "", dumps({**PLAIN, "name": "n" * TEN_MB})),
    ("60 kB string", "/api/event", "", dumps({**PLAIN, "url": "https://shop.example/" + "u" * 60_000})),
    ("deep nesting", "/api/event", "", b"[" * 60_000 + b"]" * 60_000),
    ("deep objects", "/api/event", "", b'{"p":' * 10_000 + b"1" + b"}" * 10_000),
    ("deep props", "/api/event", "", dumps({**PLAUSIBLE, "p": json.dumps([[[[[]]]]]) }).replace(b"[[[[[]]]]]", b"[" * 20_000 + b"]" * 20_000)),
    ("props json deep", "/api/event", "", dumps({**PLAUSIBLE, "p": "[" * 20_000 + "]" * 20_000})),
    ("huge integer", "/api/event", "", b'{"name": "x", "url": "https://shop.example/", "value": ' + b"9" * 5000 + b"}"),
    ("bad utf-8", "/api/event", "", b'{"name": "\xff\xfe", "url": "https://shop.example/"}'),
    ("lone surrogate", "/api/event", "", b'{"name": "\\ud800", "url": "https://shop.example/"}'),
    ("raw surrogate", "/api/event", "", b'{"name": "\xed\xa0\x80", "url": "https://shop.example/"}'),
    ("confusable site", "/api/event", "", dumps({**PLAIN, "url": "https://sh\u043ep.example/"})),
    ("confusable domain", "/api/event", "", dumps({**PLAUSIBLE, "d": "sh\u043ep.example"})),
    ("sql site", "/api/event", "", dumps({**PLAIN, "site_id": "shop.example' OR 1=1 --"})),
    ("sql campaign", "/api/event", "", dumps({**PLAIN, "url": "https://shop.example/?utm_campaign=%27%3B%20DROP%20TABLE%20events%3B--"})),
    ("10 MB ga4 body", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", b" " * TEN_MB),
    ("10 MB ga4 string", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", dumps({**_ga4_good, "client_id": "c" * TEN_MB})),
    ("ga4 deep nesting", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", b"[" * 120_000 + b"]" * 10),
    ("ga4 deep params", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", b'{"client_id": "c", "events": [{"name": "x", "params": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}]}"),
    ("ga4 1000 events", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", dumps({**_ga4_good, "events": [{"name": "page_view"}] * 1000})),
    ("ga4 superscript digit", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", dumps({**_ga4_good, "events": [{"name": "page_view", "params": {"engagement_time_msec": "\u00b2"}}]})),
    ("ga4 5000-digit time", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", dumps({**_ga4_good, "timestamp_micros": "9" * 5000})),
    ("ga4 duplicate keys", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", b'{"client_id": "a", "client_id": "b", "events": [{"name": "page_view"}]}'),
    ("ga4 bad utf-8", "/mp/collect", f"measurement_id={MEASUREMENT_ID}", b'{"client_id": "\xc3", "events": []}'),
    ("ga4 sql site", "/mp/collect", query_string([("measurement_id", "x' OR 1=1 --")]), dumps(_ga4_good)),
    ("ga4 confusable site", "/mp/collect", query_string([("measurement_id", "sh\u043ep.example")]), dumps(_ga4_good)),
    # A URL is at most 64 kB here (httpx's limit; servers' are lower still).
    ("ga4 60 kB query", "/mp/collect", "measurement_id=" + "G" * 60_000, dumps(_ga4_good)),
    ("debug 10 MB body", "/debug/mp/collect", f"measurement_id={MEASUREMENT_ID}", b"{" * TEN_MB),
    ("debug deep nesting", "/debug/mp/collect", "", b"[" * 120_000),
    ("gtag 10 MB body", "/g/collect", "v=2", b"en=x&" * (TEN_MB // 5)),
    ("gtag 10 MB line", "/g/collect", f"v=2&tid={MEASUREMENT_ID}&cid=1.2", b"en=page_view&dl=" + b"u" * TEN_MB),
    ("gtag 60 kB query", "/g/collect", f"v=2&tid={MEASUREMENT_ID}&cid=1.2&en=page_view&dl=" + "u" * 60_000, b""),
    ("gtag bad utf-8", "/g/collect", "", b"v=2&en=\xff"),
    ("gtag bad utf-8 query", "/g/collect", "v=2&tid=%ff&cid=%ed%a0%80&en=page_view", b""),
    ("gtag 10000 lines", "/g/collect", f"v=2&tid={MEASUREMENT_ID}&cid=1.2", b"en=page_view\n" * 5000),
    ("gtag sql campaign", "/g/collect", query_string([("v", "2"), ("tid", MEASUREMENT_ID), ("cid", "1.2"), ("en", "page_view"), ("dl", "https://shop.example/?utm_campaign=1');DROP TABLE x;--")]), b""),
    ("gtag huge engagement", "/g/collect", f"v=2&tid={MEASUREMENT_ID}&cid=1.2&en=page_view&_et={'9' * 5000}", b""),
    ("gtag huge value", "/g/collect", f"v=2&tid={MEASUREMENT_ID}&cid=1.2&en=purchase&epn.value={'9' * 400}&cu=EUR", b""),
]  # fmt: skip


@pytest.mark.parametrize("name", [entry[0] for entry in CORPUS])
def test_hostile_corpus(client: AppClient, name: str) -> None:
    _, path, query, body = next(entry for entry in CORPUS if entry[0] == name)
    headers = {"content-type": b"text/plain", "user-agent": CHROME.encode()}
    judged(send(client, "POST", path, query, body, headers), path)


def test_an_oversized_body_without_a_length_is_cut_off(client: AppClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(200):
            yield b"x" * 65_536  # 12.5 MB, chunked: no Content-Length to refuse it by

    for path in ("/api/event", f"/mp/collect?measurement_id={MEASUREMENT_ID}", "/g/collect"):
        answer = client.request("POST", path, chunks(), {"content-type": b"text/plain"})
        assert answer.status_code == 413, answer.text[:300]
        judged(answer, path.split("?")[0])


def test_the_log_stayed_free_of_errors(client: AppClient) -> None:
    # Run alone, it still has something to hear: the hostile corpus (but its 10 MB
    # bodies) through every endpoint, after the tests before it, if any.
    for name, path, query, body in CORPUS:
        if "10 MB" not in name:
            headers = {"content-type": b"text/plain", "user-agent": CHROME.encode()}
            judged(send(client, "POST", path, query, body, headers), path)
    # And the recorder does hear the collector's loggers.
    logging.getLogger("pipeline.collector.app").warning("recorder check")
    assert RECORDER.records.pop().getMessage() == "recorder check"
    assert_quiet_log()


# -- landing -------------------------------------------------------------------------------


def assert_landed(
    client: AppClient, settings: Settings, field: str, markers: list[str], what: str
) -> None:
    """Every marked valid event is on the topic (once, or more only if sent more: never)."""
    accepted = client.app.state.collector.outcomes["accepted"]
    messages = read_topic(settings.kafka.bootstrap, settings.kafka.events_topic, accepted, 90.0)
    on_topic = [str(event.get(field)) for event in events_of(messages)]
    found = [value for value in on_topic if value in set(markers)]
    assert sorted(found) == sorted(markers), f"{len(markers) - len(set(found))} lost"
    LANDED.add(f"{what}: sent", len(markers))
    LANDED.add(f"{what}: on the topic", len(found))


# -- a real `sessionflow collect` process -------------------------------------------------------

REAL_CORPUS = [entry for entry in CORPUS if "10 MB" in entry[0] or "deep" in entry[0]] + [
    entry for entry in CORPUS if "utf-8" in entry[0] or "surrogate" in entry[0]
]


def announce_only(base_url: str, target: str, length: int) -> httpx.Response:
    """POST a body of `length` bytes as curl does a large one: headers first, with
    `Expect: 100-continue`, and the body only once the server asks for it. A collector
    that refuses by the declared length answers at once and never reads a byte, so the
    answer cannot be lost to a reset, as it can when a client is still uploading."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=30.0) as connection:
        connection.sendall(head.encode())
        received = b""
        while chunk := connection.recv(65_536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    header_block, _, content = rest.partition(b"\r\n\r\n")
    headers: list[tuple[bytes, bytes]] = []
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers.append((name.strip(), value.strip()))
    status = int(status_line.split()[1])
    assert status != 100, "the server asked for a body it should have refused by its length"
    return httpx.Response(status, headers=headers, content=content)


def test_a_real_collector_process_answers_hostile_input_without_a_traceback(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    ga4 = (
        f'{{"shop.example" = {{measurement_id = "{MEASUREMENT_ID}"}}, '
        f'"blog.example" = {{api_secret = "{SECRET}"}}}}'
    )
    with running_collector(kafka_bootstrap, tmp_path, SESSIONFLOW_GA4=ga4) as running:
        with httpx.Client(base_url=running.url, timeout=60.0) as http:
            for name, path, query, body in REAL_CORPUS:
                url = f"{path}?{query}" if query else path
                if len(body) > 1 << 20:
                    answer = announce_only(running.url, url, len(body))
                else:
                    answer = http.post(url, content=body, headers={"content-type": "text/plain"})
                judged(answer, f"real {path}")
                assert answer.status_code != 200 or path == "/debug/mp/collect", name
            markers = [marker("real") for _ in range(3)]
            events: list[object] = [
                {"name": "page_view", "params": {"event_id": m}} for m in markers[:2]
            ]
            events.insert(1, {"name": "_bad", "params": {"x": [1]}})
            answer = http.post(
                f"/mp/collect?measurement_id={MEASUREMENT_ID}",
                content=dumps({"client_id": "c.9", "events": events}),
            )
            assert judged(answer, "real /mp/collect") == "bad_event_name"
            lines = f"en=page_view&ep.event_id={markers[2]}\nen=%ff%fe bad\n_et=x"
            answer = http.post(
                f"/g/collect?v=2&tid={MEASUREMENT_ID}&cid=7.8",
                content=lines.encode(),
                headers={"user-agent": CHROME},
            )
            judged(answer, "real /g/collect")
            assert answer.json()["accepted"] == 1, answer.text
        messages = read_topic(running.bootstrap, running.topic, 3, 60.0)
        found = {str(event.get("event_id")) for event in events_of(messages)}
        assert set(markers) <= found
        LANDED.add("real collector: sent", len(markers))
        LANDED.add("real collector: on the topic", len(set(markers) & found))
    log = running.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log and "Exception" not in log, log[-3000:]
