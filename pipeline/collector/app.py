"""`sessionflow collect`: the HTTP collector, an ASGI app (Starlette on uvicorn).

| endpoint           | answers                                                            |
|--------------------|--------------------------------------------------------------------|
| POST /mp/collect   | GA4 MP style: 204 all taken; 400 with per-event reasons otherwise  |
| POST /api/event    | PlainSignal style (JSON or sendBeacon text/plain): 202, or 400     |
| GET /t.js          | the cookie-free tracker                                            |
| GET /health        | buffer and delivery counters                                       |

Bad input gets a 4xx with `{"reason", "error"}`; 413 past the body limit; 503 (with
Retry-After) while the Kafka buffer is full. No cookie is ever set. Logs carry reason
codes and counts only: never an IP, a user agent, an id or a payload.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipeline.collector.enrichment import Dropped, Ingestor, RequestContext
from pipeline.collector.ga4 import parse_ga4
from pipeline.collector.kafka_sink import KafkaSink
from pipeline.collector.plainsignal import parse_plainsignal
from pipeline.config import Settings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import now_micros
from pipeline.events.validation import Event

log = logging.getLogger(__name__)

TRACKER_PATH = Path(__file__).parent / "static" / "t.js"
# GA4 MP clients often leave curl/requests defaults (form encoding) on a JSON body.
_ACCEPTED_CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
)
_STATUS_FOR_REASON = {Reason.BODY_TOO_LARGE: 413, Reason.UNSUPPORTED_MEDIA_TYPE: 415}


class Collector:
    def __init__(self, settings: Settings, sink: KafkaSink) -> None:
        self.settings = settings
        self.sink = sink
        self.ingestor = Ingestor(settings)
        self.outcomes: Counter[str] = Counter()  # "accepted", "rejected:<reason>", ...
        self.tracker = TRACKER_PATH.read_bytes()

    # -- endpoints ------------------------------------------------------------------------

    async def plainsignal(self, request: Request) -> Response:
        try:
            hit = parse_plainsignal(await self._body(request))
            event = self.ingestor.to_canonical(hit, self._context(request))
        except Rejected as rejected:
            return self._rejected(rejected)
        except Dropped as dropped:
            self.outcomes[f"dropped:{dropped.reason}"] += 1
            return JSONResponse({"accepted": 0, "dropped": dropped.reason}, status_code=202)
        if not self._offer([event]):
            return self._unavailable()
        return JSONResponse({"accepted": 1}, status_code=202)

    async def ga4(self, request: Request) -> Response:
        try:
            hits = parse_ga4(request.query_params.get("measurement_id"), await self._body(request))
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
        if events and not self._offer(events):
            return self._unavailable()
        if problems:
            # The valid events of a mixed batch are kept; the client learns which were not.
            first = problems[0]
            body = {
                "accepted": len(events),
                "rejected": problems,
                "reason": first["reason"],
                "error": first["error"],
            }
            return JSONResponse(body, status_code=400)
        return Response(status_code=204)

    async def tracker_script(self, request: Request) -> Response:
        return Response(
            self.tracker,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def health(self, request: Request) -> Response:
        stats = self.sink.stats()
        full = stats.pending >= stats.capacity
        body = {
            "status": "buffer_full" if full else "ok",
            "kafka_connected": stats.connected,
            "pending": stats.pending,
            "capacity": stats.capacity,
            "delivered": stats.delivered,
            "redelivered": stats.redelivered,
            "outcomes": dict(self.outcomes),
        }
        return JSONResponse(body, status_code=503 if full else 200)

    # -- helpers --------------------------------------------------------------------------

    async def _body(self, request: Request) -> bytes:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _ACCEPTED_CONTENT_TYPES:
            raise Rejected(
                Reason.UNSUPPORTED_MEDIA_TYPE, "send application/json or text/plain (sendBeacon)"
            )
        limit = self.settings.collector.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Rejected(Reason.BODY_TOO_LARGE, f"body is larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Rejected(Reason.BODY_TOO_LARGE, f"body is larger than {limit} bytes")
        return bytes(body)

    def _context(self, request: Request) -> RequestContext:
        ip = request.client.host if request.client else ""
        header = self.settings.collector.client_ip_header
        if header:
            forwarded = request.headers.get(header, "").split(",")[0].strip()
            ip = forwarded or ip
        return RequestContext(
            ip=ip,
            user_agent=request.headers.get("user-agent", ""),
            headers=request.headers,
            received_micros=now_micros(),
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
        return JSONResponse({"reason": rejected.reason, "error": rejected.line()}, status)

    def _unavailable(self) -> Response:
        return JSONResponse(
            {"reason": "kafka_unavailable", "error": "event buffer is full; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )


def site_origin_pattern(sites: list[str]) -> str:
    """CORS: pages on a configured site (or its www.), any scheme and port."""
    hosts = "|".join(re.escape(site) for site in sites)
    return rf"https?://(www\.)?({hosts})(:\d+)?"


def create_app(settings: Settings, sink: KafkaSink | None = None) -> Starlette:
    sink = sink or KafkaSink(
        settings.kafka, settings.collector.buffer_max_events, settings.data_dir / "spill"
    )
    collector = Collector(settings, sink)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sink.start()
        yield
        sink.close()

    app = Starlette(
        routes=[
            Route("/mp/collect", collector.ga4, methods=["POST"]),
            Route("/api/event", collector.plainsignal, methods=["POST"]),
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


def serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=False,  # uvicorn's access log would record client IPs
        server_header=False,
        proxy_headers=False,  # the client address comes only from collector.client_ip_header
        log_level="info",
    )
