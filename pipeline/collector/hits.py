"""`Hit`: one event as a client described it, in either protocol, before the enrichment
steps and validation; and the shape checks the protocol parsers share.

Only shape is checked here and in the protocol modules (JSON, types, required keys, batch
size); what a hit means, and everything about privacy, happens in
pipeline.collector.enrichment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.events.decode import decode_json
from pipeline.events.reasons import Reason, Rejected

MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 64


@dataclass
class Hit:
    """One event as a client described it, before privacy steps and validation."""

    # "ga4" (Measurement Protocol) | "gtag" (GA4's web protocol) | "plainsignal" (browser
    # bodies: PlainSignal's and Plausible's)
    dialect: str
    event_name: str
    site_id: str | None = None
    event_ts: int | None = None  # epoch microseconds from the client; None: received time
    event_id: str | None = None
    page_url: str | None = None
    page_referrer: str | None = None
    value: object = None
    currency: object = None
    transaction_id: object = None
    session_id: str | None = None
    engagement_time_ms: object = None
    campaign: dict[str, str] = field(default_factory=dict)  # explicit utm_* fields
    client_id: str | None = None  # raw: hashed by ingestion, never forwarded
    user_id: str | None = None  # raw: hashed by ingestion, never forwarded
    device: dict[str, str] = field(default_factory=dict)  # GA4 `device` object
    country: str | None = None  # GA4 `user_location.country_id`
    position: int = 0  # GA4: the event's index in its request's `events` list
    params: dict[str, Any] = field(default_factory=dict)  # GA4: the event's params as sent


# Values orjson reads exactly as the standard library does. Not float: orjson reads an
# integer past 64 bits as one, where the standard library keeps the integer.
_EXACT_TYPES = frozenset({str, int, bool, type(None)})


def decode_body(body: bytes) -> object:
    """A JSON body, exactly as `decode_json` reads it, several times faster when it is a
    flat object of strings, integers, booleans and nulls (a browser event's usual body).

    Anything else, and anything orjson refuses (NaN, a lone surrogate, a BOM, UTF-16,
    bad JSON), goes to `decode_json`: the same value or the same rejection as before.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return decode_json(body)
    if isinstance(value, dict) and all(type(item) in _EXACT_TYPES for item in value.values()):
        return value
    return decode_json(body)


def require_object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(Reason.NOT_AN_OBJECT, f"{what} must be a JSON object")
    return value


def required_string(payload: dict[str, Any], key: str, max_length: int = 256) -> str:
    value = payload.get(key)
    if value is None:
        raise Rejected(Reason.MISSING_FIELD, f"{key} is required")
    if not isinstance(value, str) or not value.strip():
        raise Rejected(
            Reason.WRONG_TYPE if not isinstance(value, str) else Reason.EMPTY_FIELD,
            f"{key} must be a non-empty string",
        )
    return _within(value, key, max_length)


def optional_string(
    payload: dict[str, Any], key: str, prefix: str = "", max_length: int = 256
) -> str | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Rejected(Reason.WRONG_TYPE, f"{prefix}{key} must be a string")
    return _within(value, prefix + key, max_length)


def _within(value: str, name: str, max_length: int) -> str:
    if len(value) > max_length:
        raise Rejected(Reason.TOO_LONG, f"{name} is longer than {max_length} characters")
    return value


def within_length(value: str, name: str, max_length: int) -> str:
    """`value`, or a `too_long` rejection naming the field `name`."""
    return _within(value, name, max_length)


def optional_micros(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    # ASCII digits only: str.isdigit() takes "²", which int() refuses; and int() refuses
    # more than 4300 digits. Either is a bad timestamp, not a crash.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4300:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Rejected(Reason.BAD_TIMESTAMP, f"{key} must be a non-negative integer (epoch micros)")


def string_map(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = require_object(value, what)
    return {key: item for key, item in mapping.items() if isinstance(item, str)}
