"""`POST /api/event` request bodies -> `Hit`: cookie-free, no visitor id. Two shapes share
the route, told apart by their keys (`parse_api_event`):

- PlainSignal style (our tracker, static/t.js): `{"name", "url", "referrer", "value",
  "currency", "site_id"}`; only name and url are required, and the site defaults to the
  URL's host (pipeline.collector.enrichment).
- Plausible's Events API, as its trackers send it (`@plausible-analytics/tracker` 0.4,
  `plausible-tracker` 0.3): `{"n", "u", "d", "r", "p", "$", "i", "h", "w", "v", "e",
  "sd"}`, or the long names of Plausible's server-side docs (`name`, `url`, `domain`,
  `referrer`, `props`, `revenue`, `interactive`). Any key only Plausible uses makes a body
  a Plausible one; a body of name, url and referrer alone is PlainSignal's.

A Plausible body goes through named steps, as Plausible's own Ingestion.Request does; what
has no canonical field (`sd`, `i`, `h`, `w`, `v`, props other than `transaction_id`) is
read, checked where Plausible checks it, and not kept. Both shapes then take the same
browser steps (dialect "plainsignal"): cookie-free visitor hash, user agent, URL scrubbing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pipeline.collector.hits import (
    MAX_NAME_LENGTH,
    MAX_URL_LENGTH,
    Hit,
    decode_body,
    optional_string,
    require_object,
    required_string,
    within_length,
)
from pipeline.events.reasons import Reason, Rejected

BodyShape = Literal["plainsignal", "plausible"]

_PLAINSIGNAL_KEYS = frozenset({"name", "url", "referrer", "value", "currency", "site_id"})

# Plausible's long names (its server reads `n || name`, ...) -> the trackers' short ones.
_PLAUSIBLE_LONG_NAMES = {
    "name": "n",
    "url": "u",
    "domain": "d",
    "referrer": "r",
    "props": "p",
    "meta": "p",  # Plausible's legacy names for props
    "m": "p",
    "revenue": "$",
    "interactive": "i",
    "hashMode": "h",
}
_PLAUSIBLE_SHORT_NAMES = frozenset({"n", "u", "d", "r", "p", "$", "i", "h", "w", "v", "e", "sd"})
_PLAUSIBLE_KEYS = _PLAUSIBLE_SHORT_NAMES | _PLAUSIBLE_LONG_NAMES.keys()
# Keys that make a body Plausible's: all of its keys but the three PlainSignal shares.
_PLAUSIBLE_ONLY_KEYS = _PLAUSIBLE_KEYS - _PLAINSIGNAL_KEYS

PLAUSIBLE_PAGEVIEW = "pageview"
PLAUSIBLE_ENGAGEMENT = "engagement"  # the warehouse's engagement signal of the same name
CANONICAL_PAGE_VIEW = "page_view"
_MAX_TRANSACTION_ID_LENGTH = 128
# Plausible ignores engagement times from 30 days up (old trackers sent huge values).
_MAX_ENGAGEMENT_MS = 30 * 24 * 3600 * 1000
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class ApiEvent:
    """A `POST /api/event` body: its shape (which answer it gets) and its hit."""

    shape: BodyShape
    hit: Hit


def parse_api_event(body: bytes) -> ApiEvent:
    """Either shape; raises Rejected with a one-line reason when the body is bad."""
    payload = require_object(decode_body(body), "body")
    if is_plausible_body(payload):
        return ApiEvent("plausible", plausible_hit(payload))
    return ApiEvent("plainsignal", plainsignal_hit(payload))


def is_plausible_body(payload: dict[str, Any]) -> bool:
    return not _PLAUSIBLE_ONLY_KEYS.isdisjoint(payload.keys())


# -- PlainSignal style ----------------------------------------------------------------------


def parse_plainsignal(body: bytes) -> Hit:
    """A PlainSignal-style body only (Plausible keys are unknown fields here)."""
    return plainsignal_hit(require_object(decode_body(body), "body"))


def plainsignal_hit(payload: dict[str, Any]) -> Hit:
    unknown = payload.keys() - _PLAINSIGNAL_KEYS
    if unknown:
        raise Rejected(Reason.UNKNOWN_FIELD, f"unknown field {sorted(unknown)[0]!r}")
    return Hit(
        dialect="plainsignal",
        event_name=required_string(payload, "name", MAX_NAME_LENGTH),
        page_url=required_string(payload, "url", MAX_URL_LENGTH),
        page_referrer=optional_string(payload, "referrer", max_length=MAX_URL_LENGTH),
        site_id=optional_string(payload, "site_id"),
        value=payload.get("value"),
        currency=payload.get("currency"),
    )


# -- Plausible's Events API -----------------------------------------------------------------


def plausible_hit(payload: dict[str, Any]) -> Hit:
    fields = short_names(payload)
    hit = Hit(dialect="plainsignal", event_name="")
    for step in _PLAUSIBLE_STEPS:
        step(fields, hit)
    return hit


def short_names(payload: dict[str, Any]) -> dict[str, Any]:
    """The body under the trackers' short names; the short name wins, as in Plausible."""
    unknown = payload.keys() - _PLAUSIBLE_KEYS
    if unknown:
        raise Rejected(Reason.UNKNOWN_FIELD, f"unknown field {sorted(unknown)[0]!r}")
    fields = {
        _PLAUSIBLE_LONG_NAMES[key]: value
        for key, value in payload.items()
        if key in _PLAUSIBLE_LONG_NAMES and value is not None
    }
    fields.update((key, value) for key, value in payload.items() if key in _PLAUSIBLE_SHORT_NAMES)
    return fields


PlausibleStep = Callable[[dict[str, Any], Hit], None]


def put_event_name(fields: dict[str, Any], hit: Hit) -> None:
    """`n`: "pageview" is our page_view; every other name is kept as sent. Plausible takes
    an integer too (404 tracking)."""
    name = fields.get("n")
    if isinstance(name, int) and not isinstance(name, bool):
        name = str(name)
    name = required_string({"n": name}, "n", MAX_NAME_LENGTH)
    hit.event_name = CANONICAL_PAGE_VIEW if name == PLAUSIBLE_PAGEVIEW else name


def put_url(fields: dict[str, Any], hit: Hit) -> None:
    """`u`: the page; scrubbed later, as every page URL is."""
    hit.page_url = required_string(fields, "u", MAX_URL_LENGTH)


def put_domain(fields: dict[str, Any], hit: Hit) -> None:
    """`d`: the site, without "www." (Plausible's sanitize_hostname). Absent: the URL's
    host, as Plausible does; either way it must be a configured site (put_site)."""
    domain = fields.get("d")
    if domain is None:
        return
    if not isinstance(domain, str):
        raise Rejected(Reason.WRONG_TYPE, "d must be a string")
    domain = domain.strip()
    if not domain:
        raise Rejected(Reason.EMPTY_FIELD, "d must not be blank")
    if "," in domain:
        raise Rejected(
            Reason.UNKNOWN_SITE, "d names several sites; sessionflow takes one site per event"
        )
    hit.site_id = within_length(domain.removeprefix("www."), "d", 253)


def put_referrer(fields: dict[str, Any], hit: Hit) -> None:
    """`r`: a string or null; cut at the URL limit, as Plausible cuts it, then scrubbed."""
    referrer = fields.get("r")
    if referrer is not None and not isinstance(referrer, str):
        raise Rejected(Reason.WRONG_TYPE, "r must be a string or null")
    hit.page_referrer = referrer[:MAX_URL_LENGTH] if referrer else None


def put_revenue(fields: dict[str, Any], hit: Hit) -> None:
    """`$`: `{amount, currency}` -> value and currency; the event keeps its name. `{}` (the
    0.4 tracker's tagged events send it) is no revenue."""
    revenue = _json_object(fields.get("$"), "$")
    if not revenue:
        return
    unknown = revenue.keys() - {"amount", "currency"}
    if unknown:
        raise Rejected(Reason.UNKNOWN_FIELD, f"unknown field '$.{sorted(unknown)[0]}'")
    for key in ("amount", "currency"):
        if revenue.get(key) is None:
            raise Rejected(Reason.MISSING_FIELD, f"$.{key} is required with revenue")
    hit.value = _amount(revenue["amount"])
    currency = revenue["currency"]
    if not isinstance(currency, str):
        raise Rejected(Reason.WRONG_TYPE, "$.currency must be a string (ISO 4217)")
    hit.currency = currency.strip().upper()


def put_props(fields: dict[str, Any], hit: Hit) -> None:
    """`p` (an object, or the 0.3 tracker's JSON string of one): only `transaction_id`
    has a canonical field and is kept; the other props never leave the collector."""
    props = _json_object(fields.get("p"), "p")
    transaction_id = props.get("transaction_id")
    if transaction_id is None or transaction_id == "":
        return
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, str | int):
        raise Rejected(Reason.WRONG_TYPE, "p.transaction_id must be a string or an integer")
    hit.transaction_id = within_length(
        str(transaction_id), "p.transaction_id", _MAX_TRANSACTION_ID_LENGTH
    )


def put_engagement(fields: dict[str, Any], hit: Hit) -> None:
    """An `engagement` event: `e` (engaged milliseconds) is its engagement time; `sd`
    (scroll depth) has no canonical field. As Plausible: at least one of them must be a
    valid integer; an `e` out of range counts as missing. Other events' `e` is ignored."""
    if hit.event_name != PLAUSIBLE_ENGAGEMENT:
        return
    engaged_ms = _integer(fields.get("e"))
    if engaged_ms is not None and not 0 <= engaged_ms < _MAX_ENGAGEMENT_MS:
        engaged_ms = None
    scroll_depth = _integer(fields.get("sd"))
    if engaged_ms is None and (scroll_depth is None or scroll_depth < 0):
        raise Rejected(Reason.MISSING_FIELD, "an engagement event needs an integer 'e' or 'sd'")
    hit.engagement_time_ms = engaged_ms


_PLAUSIBLE_STEPS: tuple[PlausibleStep, ...] = (
    put_event_name,
    put_url,
    put_domain,
    put_referrer,
    put_revenue,
    put_props,
    put_engagement,
)


# -- value helpers --------------------------------------------------------------------------


def _json_object(value: object, name: str) -> dict[str, Any]:
    """An object, a JSON string of one (as Plausible decodes it), or nothing ({})."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError, ValueError):
            raise Rejected(Reason.WRONG_TYPE, f"{name} must be an object or its JSON") from None
    if not isinstance(value, dict):
        raise Rejected(Reason.WRONG_TYPE, f"{name} must be an object or its JSON")
    return value


def _amount(value: object) -> float:
    """A number, or a decimal string (the 0.4 tracker's tagged events send one)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Rejected(Reason.WRONG_TYPE, "$.amount must be a number or a decimal string")
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise Rejected(
                Reason.WRONG_TYPE, "$.amount must be a number or a decimal string"
            ) from None
    amount = float(value)
    if not math.isfinite(amount):
        raise Rejected(Reason.VALUE_NOT_FINITE, "$.amount must be a finite number")
    if amount < 0:
        raise Rejected(
            Reason.NEGATIVE_AMOUNT, "$.amount must not be negative (money returned is a refund)"
        )
    return amount


def _integer(value: object) -> int | None:
    """An integer, or a string of one (Plausible's Integer.parse); else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value)
    return None
