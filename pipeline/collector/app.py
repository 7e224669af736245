"""`sessionflow collect`: the HTTP collector, an ASGI app (Starlette on uvicorn).

| endpoint               | answers                                                        |
|------------------------|----------------------------------------------------------------|
| POST /mp/collect       | GA4 MP: 204 all taken; 400 with per-event reasons otherwise    |
| POST /debug/mp/collect | GA4 MP validation server: 200 `{"validationMessages": [...]}`  |
| POST /api/event        | PlainSignal or Plausible Events API body: 202, or 400          |
| /g/collect             | gtag.js (GA4 web), GET or POST, a line per event: 204, or 400  |
| GET /t.js              | the cookie-free tracker                                        |
| GET /health            | buffer and delivery counters                                   |

Bad input gets a 4xx with `{"reason", "error"}`; 413 past the body limit, 408 when the
body is late; 503 (with Retry-After) while the Kafka buffer is full. What one connection
may hold (headers, time, the number of connections) is bounded below the app
(pipeline.collector.connections). No cookie is ever set. Logs carry reason
codes and counts only: never an IP, a user agent, an id or a payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.collector.client_address import FORWARDED_FOR, TrustedProxies
from pipeline.collector.enrichment import Dropped, Ingestor, RequestContext
from pipeline.collector.ga4 import (
    GA4_MAX_BODY_BYTES,
    Finding,
    check_api_secret,
    check_mp,
    site_for_request,
)
from pipeline.collector.gtag import parse_gtag
from pipeline.collector.kafka_sink import KafkaSink
from pipeline.collector.plainsignal import parse_api_event
from pipeline.config import Settings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import now_micros
from pipeline.events.validation import Event
from pipeline.privacy.salts import HOUSEKEEPING_EVERY_S

log = logging.getLogger(__name__)

TRACKER_PATH = Path(__file__).parent / "static" / "t.js"
# GA4 MP clients often leave curl/requests defaults (form encoding) on a JSON body.
_ACCEPTED_CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
)
_STATUS_FOR_REASON = {
    Reason.BODY_TOO_LARGE: 413,
    Reason.BODY_TIMEOUT: 408,
    Reason.UNSUPPORTED_MEDIA_TYPE: 415,
    Reason.MISSING_API_SECRET: 401,
    Reason.BAD_API_SECRET: 403,
}


class Collector:
    def __init__(self, settings: Settings, sink: KafkaSink) -> None:
        self.settings = settings
        self.sink = sink
        self.ingestor = Ingestor(settings)
        self.trusted_proxies = TrustedProxies(settings.collector.trusted_proxies)
        self.outcomes: Counter[str] = Counter()  # "accepted", "rejected:<reason>", ...
        self.tracker = TRACKER_PATH.read_bytes()

    # -- endpoints ------------------------------------------------------------------------

    async def plainsignal(self, request: Request) -> Response:
        """PlainSignal-style bodies, and Plausible's Events API as its trackers send it.

        A Plausible body is answered as Plausible answers: 202 `ok`, with
        `X-Plausible-Dropped: 1` when the event is deliberately not kept. Bad bodies of
        either shape get our one-line 400.
        """
        try:
            body = parse_api_event(await self._body(request))
        except Rejected as rejected:
            return self._rejected(rejected)
        plausible = body.shape == "plausible"
        try:
            event = self.ingestor.to_canonical(body.hit, self._context(request))
        except Rejected as rejected:
            return self._rejected(rejected)
        except Dropped as dropped:
            self.outcomes[f"dropped:{dropped.reason}"] += 1
            if plausible:
                dropped_header = {"X-Plausible-Dropped": "1"}
                return Response("ok", 202, headers=dropped_header, media_type="text/plain")
            return JSONResponse({"accepted": 0, "dropped": dropped.reason}, status_code=202)
        if not self._offer([event]):
            return self._unavailable()
        if plausible:
            return Response("ok", 202, media_type="text/plain")  # Plausible's answer
        return JSONResponse({"accepted": 1}, status_code=202)

    async def ga4(self, request: Request) -> Response:
        try:
            site, authenticated = self._ga4_site(request)
            body = await self._body(request, self._ga4_body_limit())
        except Rejected as rejected:
            return self._rejected(rejected)
        context = self._context(request, authenticated=authenticated)
        check = check_mp(site, body, self.ingestor, context)
        for reason, count in check.dropped.items():
            self.outcomes[f"dropped:{reason}"] += count
        if check.fatal is not None:
            return self._rejected(check.fatal.rejected())
        problems = [finding.problem() for finding in check.first_per_event()]
        for problem in problems:
            self.outcomes[f"rejected:{problem['reason']}"] += 1
        return self._batch_answer(check.events, problems)

    async def ga4_debug(self, request: Request) -> Response:
        # The validation server: /mp/collect's checks, answered as Google's
        # validationMessages (200; an empty list when valid). Nothing is produced.
        # Without a known measurement_id the body is not read: a stranger's bodies are not
        # parsed (nor are their names remembered).
        findings: list[Finding] = []
        try:
            site, authenticated = self._ga4_site(request)
        except Rejected as rejected:
            if rejected.reason in (Reason.MISSING_API_SECRET, Reason.BAD_API_SECRET):
                return self._rejected(rejected)
            findings.append(Finding.of(rejected, "measurement_id"))
        else:
            try:
                body = await self._body(request, self._ga4_body_limit())
            except Rejected as rejected:
                if rejected.reason == Reason.CLIENT_DISCONNECTED:
                    return self._rejected(rejected)
                findings.append(Finding.of(rejected, "body"))
            else:
                context = self._context(request, authenticated=authenticated)
                findings += check_mp(site, body, self.ingestor, context).findings
        self.outcomes["validated"] += 1
        messages = [finding.message() for finding in findings]
        return JSONResponse({"validationMessages": messages})

    def _ga4_site(self, request: Request) -> tuple[str, bool]:
        # The site the measurement_id names, and whether the request carried its
        # api_secret (a site without one: anyone may send). Neither the query string nor
        # the secret is ever logged.
        site = site_for_request(self.settings, request.query_params.get("measurement_id"))
        api_secret = request.query_params.get("api_secret")
        return site, check_api_secret(self.settings, site, api_secret)

    def _ga4_body_limit(self) -> int:
        # GA4's own limit, even when collector.max_body_bytes is lower.
        return max(self.settings.collector.max_body_bytes, GA4_MAX_BODY_BYTES)

    async def gtag(self, request: Request) -> Response:
        # gtag.js beacons (GET, or POST with a line per event): 204 and no body when all
        # are taken or deliberately dropped; a batch keeps its valid events, as /mp/collect.
        if request.method == "HEAD":  # Starlette routes HEAD with GET: a probe, no hit
            return Response(status_code=204)
        try:
            if (tid := request.query_params.get("tid")) is not None:
                self.ingestor.measurement_site(tid)  # an unknown site's body is not read
            hits = parse_gtag(request.url.query, await self._body(request))
        except Rejected as rejected:
            return self._rejected(rejected)
        context = self._context(request)
        events: list[Event] = []
        problems: list[dict[str, Any]] = []
        for index, outcome in enumerate(hits):
            try:
                if isinstance(outcome, Rejected):
                    raise outcome
                events.append(self.ingestor.to_canonical(outcome, context))
            except Rejected as rejected:
                self.outcomes[f"rejected:{rejected.reason}"] += 1
                problem = {"index": index, "reason": rejected.reason, "error": rejected.line()}
                problems.append(problem)
            except Dropped as dropped:
                self.outcomes[f"dropped:{dropped.reason}"] += 1
        return self._batch_answer(events, problems)

    def _batch_answer(self, events: list[Event], problems: list[dict[str, Any]]) -> Response:
        """A GA4 batch's answer: its valid events are kept even when some were rejected;
        the client learns which were not (400), else 204."""
        if events and not self._offer(events):
            return self._unavailable()
        if problems:
            first = problems[0]
            answer = {
                "accepted": len(events),
                "rejected": problems,
                "reason": first["reason"],
                "error": first["error"],
            }
            return JSONResponse(answer, status_code=400)
        return Response(status_code=204)

    async def tracker_script(self, request: Request) -> Response:
        return Response(
            self.tracker,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def health(self, request: Request) -> Response:
        stats = self.sink.stats()
        full = stats.full
        body = {
            "status": "buffer_full" if full else "ok",
            "kafka_connected": stats.connected,
            "pending": stats.pending,
            "capacity": stats.capacity,
            "pending_bytes": stats.pending_bytes,
            "capacity_bytes": stats.capacity_bytes,
            "delivered": stats.delivered,
            "redelivered": stats.redelivered,
            "outcomes": dict(self.outcomes),
        }
        return JSONResponse(body, status_code=503 if full else 200)

    # -- helpers --------------------------------------------------------------------------

    async def _body(self, request: Request, limit: int | None = None) -> bytes:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _ACCEPTED_CONTENT_TYPES:
            raise Rejected(
                Reason.UNSUPPORTED_MEDIA_TYPE, "send application/json or text/plain (sendBeacon)"
            )
        limit = limit or self.settings.collector.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Rejected(Reason.BODY_TOO_LARGE, f"body is larger than {limit} bytes")
        body = bytearray()
        timeout_s = self.settings.collector.body_timeout_seconds
        try:
            async with asyncio.timeout(timeout_s):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > limit:
                        raise Rejected(Reason.BODY_TOO_LARGE, f"body is larger than {limit} bytes")
        except TimeoutError:
            late = f"body not received within {timeout_s:g} s"
            raise Rejected(Reason.BODY_TIMEOUT, late) from None
        except ClientDisconnect:
            # Counted, no traceback (any client can leave mid-body); the answer it gets
            # goes nowhere: uvicorn drops what is sent on a closed connection.
            raise Rejected(Reason.CLIENT_DISCONNECTED, "client left before its body") from None
        return bytes(body)

    def _context(self, request: Request, *, authenticated: bool = False) -> RequestContext:
        peer = request.client.host if request.client else ""
        client = self.trusted_proxies.client(peer, request.headers.getlist(FORWARDED_FOR))
        return RequestContext(
            ip=client.ip,
            user_agent=request.headers.get("user-agent", ""),
            headers=request.headers,
            received_micros=now_micros(),
            via_trusted_proxy=client.via_trusted_proxy,
            authenticated=authenticated,
        )

    def _offer(self, events: list[Event]) -> bool:
        if self.sink.offer(events):
            self.outcomes["accepted"] += len(events)
            return True
        self.outcomes["refused:buffer_full"] += len(events)
        return False

    def _rejected(self, rejected: Rejected) -> Response:
        self.outcomes[f"rejected:{rejected.reason}"] += 1
        log.debug("rejected: %s", rejected.reason)  # the code only: details may echo input
        status = _STATUS_FOR_REASON.get(Reason(rejected.reason), 400)
        # A late body's client is too slow to keep: the connection is closed after this.
        close = {"Connection": "close"} if rejected.reason == Reason.BODY_TIMEOUT else None
        return JSONResponse({"reason": rejected.reason, "error": rejected.line()}, status, close)

    def _unavailable(self) -> Response:
        return JSONResponse(
            {"reason": "kafka_unavailable", "error": "event buffer is full; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )


async def _destroy_expired_salts(collector: Collector) -> None:
    # At start-up and then every minute: requests also destroy expired salts, but an idle
    # collector (or one restarted days later) must not keep them until the next request.
    # On the event loop, as the requests' own salt lookups, so the two never race.
    # A failure (a read-only shared salt directory) is logged and retried: it must neither
    # end the task unseen nor, re-raised at shutdown, keep the sink from its last flush.
    while True:
        try:
            collector.ingestor.destroy_expired_salts(datetime.now(UTC))
        except OSError as exc:
            log.error("cannot destroy expired salts: %s", exc)
        await asyncio.sleep(HOUSEKEEPING_EVERY_S)


def site_origin_pattern(sites: list[str]) -> str:
    """CORS: pages on a configured site (or its www.), any scheme and port."""
    hosts = "|".join(re.escape(site) for site in sites)
    return rf"https?://(www\.)?({hosts})(:\d+)?"


def create_app(settings: Settings, sink: KafkaSink | None = None) -> Starlette:
    sink = sink or KafkaSink(
        settings.kafka,
        settings.collector.buffer_max_events,
        settings.data_dir / "spill",
        settings.collector.buffer_max_bytes,
    )
    collector = Collector(settings, sink)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sink.start()
        housekeeping = asyncio.create_task(_destroy_expired_salts(collector))
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            sink.close()

    app = Starlette(
        routes=[
            Route("/mp/collect", collector.ga4, methods=["POST"]),
            Route("/debug/mp/collect", collector.ga4_debug, methods=["POST"]),
            Route("/api/event", collector.plainsignal, methods=["POST"]),
            Route("/g/collect", collector.gtag, methods=["GET", "POST"]),
            Route("/t.js", collector.tracker_script, methods=["GET"]),
            Route("/health", collector.health, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origin_regex=site_origin_pattern(settings.sites),
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type"],
                max_age=86_400,
            )
        ],
        lifespan=lifespan,
    )
    app.state.collector = collector
    return app


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (`--workers` > 1): settings from the
    environment and $SESSIONFLOW_CONFIG, as the parent process read them. Every worker
    thus builds its own buffer, Kafka producer and background thread."""
    from pipeline.config import load_settings

    # A spawned worker has none of the parent's logging set up: the sink's warnings
    # (Kafka away, events spilled at shutdown) must still reach stderr.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    return create_app(load_settings())


def serve(
    settings: Settings, host: str, port: int, workers: int = 1, config_path: str | None = None
) -> None:
    """uvicorn, in this process (workers=1) or as a supervisor of `workers` processes.

    Each worker is a process of its own with its own app, event buffer and Kafka producer
    (a producer is not shared across processes); the buffer bound applies per worker.
    On SIGTERM or SIGINT each worker finishes its requests, then its lifespan flushes its
    buffer to Kafka (or spills it), as the single-process server does.
    """
    import functools
    import os

    import uvicorn

    from pipeline.collector.connections import ConnectionLimits, LimitedHttpProtocol

    limits = settings.collector
    connection_limits = ConnectionLimits(
        max_connections=limits.max_connections,
        max_header_bytes=limits.max_header_bytes,
        header_timeout_s=limits.header_timeout_seconds,
        max_body_bytes=max(limits.max_body_bytes, GA4_MAX_BODY_BYTES),
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # uvicorn's access log would record client IPs
        "server_header": False,
        "proxy_headers": False,  # the client address: pipeline.collector.client_address
        "log_level": "info",
        # uvicorn calls this per connection as it calls a protocol class; a partial of a
        # module-level class pickles, so each worker process gets the same limits.
        "http": functools.partial(LimitedHttpProtocol, limits=connection_limits),
        "timeout_keep_alive": limits.keep_alive_seconds,
    }
    if workers <= 1:
        uvicorn.run(create_app(settings), **options)
        return
    if config_path:
        # The workers read their settings as this process did: same file, same environment.
        os.environ["SESSIONFLOW_CONFIG"] = str(config_path)
    uvicorn.run(
        "pipeline.collector.app:app_from_environment", factory=True, workers=workers, **options
    )
