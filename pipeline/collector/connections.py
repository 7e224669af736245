"""What one connection may take of a collector process: uvicorn's httptools protocol with
a connection cap, a bound on a request's line and headers, and a deadline for them.

uvicorn (0.54, httptools) has none of these for HTTP/1.1: httptools gathers a header of
any length in memory, a connection that sends a byte now and then is never timed out
(its keep-alive timer stops at the first byte), and `limit_concurrency` answers 503 only
once a request's headers are in, holding the connection meanwhile. So, per connection:

- beyond `max_connections` open in this process, a new one is answered 503 and closed
  before anything is read;
- the request line and headers must arrive within `header_timeout_s` of the connection's
  start or of the previous answer (408 and closed; an idle connection is just closed).
  That deadline also bounds the draining of a body the app answered without reading;
- a request line and headers of more than `max_header_bytes` are answered 431 and the
  connection closed: at most that plus one read (uvloop's, 256 KiB) is ever held;
- what a request brings after its head (body, chunk framing, trailers) is bounded too:
  beyond `max_body_bytes` (the largest body any route takes) twice over (room for chunk
  framing) plus `max_header_bytes` (trailers), it is answered 413 (or, once an answer has
  begun, just closed), checked before the read reaches the parser (the read that ends a
  head counts as the head's: at most one read more is held). Trailers are dropped
  unkept (httptools passes them to `on_header`, which would append them to the request's
  headers).

The body's deadline is the app's (`Collector._body`): only it knows when it reads one.
"""

from __future__ import annotations

import asyncio
import http
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    max_header_bytes: int
    header_timeout_s: float
    max_body_bytes: int  # the largest body any route accepts

    @property
    def max_after_head_bytes(self) -> int:
        """What a request may send after its head: its body, chunk framing (up to as
        much again: chunks of 16 bytes or more) and trailers (as much as a head)."""
        return 2 * self.max_body_bytes + self.max_header_bytes


def _answer(status: http.HTTPStatus) -> bytes:
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ).encode()


_UNAVAILABLE = _answer(http.HTTPStatus.SERVICE_UNAVAILABLE)
_TIMED_OUT = _answer(http.HTTPStatus.REQUEST_TIMEOUT)
_HEADERS_TOO_LARGE = _answer(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
_TOO_LARGE = _answer(http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's protocol for one connection, within `limits`. uvicorn builds one per
    connection from `functools.partial(LimitedHttpProtocol, limits=...)`."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._reading_head = True  # the bytes that arrive belong to a request's head
        self._head_bytes = 0  # received since the head began (an overestimate by a read)
        self._after_head_bytes = 0  # received since the head ended (idem)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(_UNAVAILABLE)
            return
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # closing: what still arrives is dropped unparsed
        if self._reading_head:
            self._head_bytes += len(data)
        else:
            # Before the parser sees it: nothing of a request's body, framing or trailers
            # beyond the bound is held.
            self._after_head_bytes += len(data)
            if self._after_head_bytes > self.limits.max_after_head_bytes:
                self._refuse_after_head()
                return
        super().data_received(data)
        if self._reading_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(_HEADERS_TOO_LARGE)

    def on_headers_complete(self) -> None:
        # The exact size, for a head that arrived whole within one read.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refuse(_HEADERS_TOO_LARGE)
            return
        self._reading_head = False
        self._after_head_bytes = 0
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._reading_head:  # after the head: a chunked body's trailers, dropped
            super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._reading_head = True  # what comes next is the next request's head
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next request's head is in already
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm_head_deadline()

    # -- the head's deadline ------------------------------------------------------------------

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if self._reading_head and self._head_bytes:
            self._refuse(_TIMED_OUT)
        else:  # idle, or still sending a body the app answered without reading
            self._refused = True
            self.transport.close()

    def _refuse_after_head(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.response_started:  # no second answer: just close
            self._refused = True
            self._cancel_head_deadline()
            self.transport.close()
        else:
            self._refuse(_TOO_LARGE)

    def _refuse(self, answer: bytes) -> None:
        self._refused = True
        self._cancel_head_deadline()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
