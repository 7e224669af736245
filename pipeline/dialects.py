"""Request bodies of the two collector dialects -> dialect-neutral `Hit`s.

Only shape is checked here (JSON, types, required keys, batch size); what a hit means,
and everything about privacy, happens in pipeline.ingestion. A GA4 request with several
events yields one outcome per event, so one bad event does not sink its neighbours.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.validation import Reason, Rejected

GA4_MAX_EVENTS = 25
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 64
_GA4_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_GA4_CAMPAIGN_PARAMS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "campaign": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
_PLAINSIGNAL_KEYS = frozenset({"name", "url", "referrer", "value", "currency", "site_id"})


@dataclass
class Hit:
    """One event as a client described it, before privacy steps and validation."""

    dialect: str  # "ga4" | "plainsignal"
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


def decode_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"body is not valid JSON ({exc.__class__.__name__})"
        raise Rejected(Reason.BAD_JSON, reason) from None


def parse_plainsignal(body: bytes) -> Hit:
    payload = _object(decode_json(body), "body")
    unknown = payload.keys() - _PLAINSIGNAL_KEYS
    if unknown:
        raise Rejected(Reason.UNKNOWN_FIELD, f"unknown field {sorted(unknown)[0]!r}")
    return Hit(
        dialect="plainsignal",
        event_name=_required_string(payload, "name", MAX_NAME_LENGTH),
        page_url=_required_string(payload, "url", MAX_URL_LENGTH),
        page_referrer=_optional_string(payload, "referrer", max_length=MAX_URL_LENGTH),
        site_id=_optional_string(payload, "site_id"),
        value=payload.get("value"),
        currency=payload.get("currency"),
    )


def parse_ga4(measurement_id: str | None, body: bytes) -> list[Hit | Rejected]:
    """One Hit or Rejected per event; raises Rejected when the request itself is bad."""
    if not measurement_id:
        raise Rejected(Reason.MISSING_FIELD, "query parameter measurement_id (the site) is needed")
    payload = _object(decode_json(body), "body")
    client_id = _required_string(payload, "client_id")
    user_id = _optional_string(payload, "user_id")
    request_ts = _optional_micros(payload, "timestamp_micros")
    device = _string_map(payload.get("device"), "device")
    location = _string_map(payload.get("user_location"), "user_location")
    events = payload.get("events")
    if events is None:
        raise Rejected(Reason.MISSING_FIELD, "events is required")
    if not isinstance(events, list):
        raise Rejected(Reason.WRONG_TYPE, "events must be a list of {name, params}")
    if not events:
        raise Rejected(Reason.NO_EVENTS, "events is empty")
    if len(events) > GA4_MAX_EVENTS:
        raise Rejected(
            Reason.TOO_MANY_EVENTS, f"{len(events)} events; at most {GA4_MAX_EVENTS} per request"
        )
    template = Hit(
        dialect="ga4",
        event_name="",
        site_id=measurement_id,
        event_ts=request_ts,
        client_id=client_id,
        user_id=user_id,
        device=device,
        country=location.get("country_id"),
    )
    outcomes: list[Hit | Rejected] = []
    for raw_event in events:
        try:
            outcomes.append(_ga4_event(template, raw_event))
        except Rejected as rejected:
            outcomes.append(rejected)
    return outcomes


def _ga4_event(template: Hit, raw_event: object) -> Hit:
    event = _object(raw_event, "event")
    name = _required_string(event, "name")
    if not _GA4_EVENT_NAME.fullmatch(name):
        raise Rejected(
            Reason.BAD_EVENT_NAME,
            "event name must start with a letter and hold at most 40 letters, digits or _",
        )
    params = _object(event.get("params", {}), "params")
    session_id = params.get("session_id")
    if session_id is not None and (
        isinstance(session_id, bool) or not isinstance(session_id, str | int)
    ):
        raise Rejected(Reason.WRONG_TYPE, "params.session_id must be a string or integer")
    campaign = {
        utm: value
        for param, utm in _GA4_CAMPAIGN_PARAMS.items()
        if (value := _optional_string(params, param, prefix="params.")) is not None
    }
    return Hit(
        dialect="ga4",
        event_name=name,
        site_id=template.site_id,
        event_ts=_optional_micros(event, "timestamp_micros") or template.event_ts,
        event_id=_optional_string(params, "event_id", prefix="params."),
        page_url=_optional_string(params, "page_location", "params.", MAX_URL_LENGTH),
        page_referrer=_optional_string(params, "page_referrer", "params.", MAX_URL_LENGTH),
        value=params.get("value"),
        currency=params.get("currency"),
        transaction_id=params.get("transaction_id"),
        session_id=None if session_id is None else str(session_id),
        engagement_time_ms=_engagement(params.get("engagement_time_msec")),
        campaign=campaign,
        client_id=template.client_id,
        user_id=template.user_id,
        device=template.device,
        country=template.country,
    )


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(Reason.NOT_AN_OBJECT, f"{what} must be a JSON object")
    return value


def _required_string(payload: dict[str, Any], key: str, max_length: int = 256) -> str:
    value = payload.get(key)
    if value is None:
        raise Rejected(Reason.MISSING_FIELD, f"{key} is required")
    if not isinstance(value, str) or not value.strip():
        raise Rejected(
            Reason.WRONG_TYPE if not isinstance(value, str) else Reason.EMPTY_FIELD,
            f"{key} must be a non-empty string",
        )
    return _within(value, key, max_length)


def _optional_string(
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


def _optional_micros(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise Rejected(Reason.BAD_TIMESTAMP, f"{key} must be a non-negative integer (epoch micros)")


def _engagement(value: object) -> object:
    # GA4 clients send engagement_time_msec as a number or a numeric string.
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def _string_map(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    mapping = _object(value, what)
    return {key: item for key, item in mapping.items() if isinstance(item, str)}
