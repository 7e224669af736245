"""GA4 Measurement Protocol request bodies (`POST /mp/collect`) -> one `Hit` per event.

A request with several events yields one outcome per event, so one bad event does not
sink its neighbours. Each hit keeps its position in the request and its params as sent:
the event id a retry must reproduce is derived from them (pipeline.collector.enrichment).
"""

from __future__ import annotations

import re

from pipeline.collector.hits import (
    MAX_URL_LENGTH,
    Hit,
    optional_micros,
    optional_string,
    require_object,
    required_string,
    string_map,
)
from pipeline.events.decode import decode_json
from pipeline.events.reasons import Reason, Rejected

GA4_MAX_EVENTS = 25
_GA4_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_GA4_CAMPAIGN_PARAMS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "campaign": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}


def parse_ga4(measurement_id: str | None, body: bytes) -> list[Hit | Rejected]:
    """One Hit or Rejected per event; raises Rejected when the request itself is bad."""
    if not measurement_id:
        raise Rejected(Reason.MISSING_FIELD, "query parameter measurement_id (the site) is needed")
    payload = require_object(decode_json(body), "body")
    client_id = required_string(payload, "client_id")
    user_id = optional_string(payload, "user_id")
    request_ts = optional_micros(payload, "timestamp_micros")
    device = string_map(payload.get("device"), "device")
    location = string_map(payload.get("user_location"), "user_location")
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
    for position, raw_event in enumerate(events):
        try:
            outcomes.append(_ga4_event(template, position, raw_event))
        except Rejected as rejected:
            outcomes.append(rejected)
    return outcomes


def _ga4_event(template: Hit, position: int, raw_event: object) -> Hit:
    event = require_object(raw_event, "event")
    name = required_string(event, "name")
    if not _GA4_EVENT_NAME.fullmatch(name):
        raise Rejected(
            Reason.BAD_EVENT_NAME,
            "event name must start with a letter and hold at most 40 letters, digits or _",
        )
    params = require_object(event.get("params", {}), "params")
    session_id = params.get("session_id")
    if session_id is not None and (
        isinstance(session_id, bool) or not isinstance(session_id, str | int)
    ):
        raise Rejected(Reason.WRONG_TYPE, "params.session_id must be a string or integer")
    campaign = {
        utm: value
        for param, utm in _GA4_CAMPAIGN_PARAMS.items()
        if (value := optional_string(params, param, prefix="params.")) is not None
    }
    return Hit(
        dialect="ga4",
        event_name=name,
        site_id=template.site_id,
        event_ts=optional_micros(event, "timestamp_micros") or template.event_ts,
        event_id=optional_string(params, "event_id", prefix="params."),
        page_url=optional_string(params, "page_location", "params.", MAX_URL_LENGTH),
        page_referrer=optional_string(params, "page_referrer", "params.", MAX_URL_LENGTH),
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
        position=position,
        params=params,
    )


def _engagement(value: object) -> object:
    # GA4 clients send engagement_time_msec as a number or a numeric string.
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value
