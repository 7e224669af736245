"""gtag.js's web protocol (`/g/collect`, GA4 `v=2`) -> one `Hit` per event.

What gtag.js sends to a server container (`server_container_url`), and libraries such as
`@minimal-analytics/ga4` send alike: the query string holds the params every event of the
request shares (`v`, `tid`, `cid`, `sid`, `dl`, ...); a POST body, when there is one, holds
one event per line, each line a further query string (`en=scroll&epn.x=1`) whose params
add to, or override, the shared ones. Without a body (GET, or a beacon with
the URL only) the query string is the one event.

Only shape is checked here, as in the other protocol modules: which site `tid` names, the
hashing of `cid` and `uid`, URL scrubbing and the rest happen in
pipeline.collector.enrichment (the "gtag" steps). What is read, and what is not stored:

| param | becomes | note |
|---|---|---|
| `v` | (checked) | must be `2` |
| `tid` | `site_id` | the site whose `[ga4."site"] measurement_id` it is (or the site id itself) |
| `cid` | `visitor_id` | keyed hash, as the Measurement Protocol's `client_id`; required |
| `uid` | `user_id` | keyed hash |
| `sid` | `session_id` | keyed hash, as `params.session_id` on the Measurement Protocol |
| `en` | `event_name` | GA4's rule for names; `user_engagement` is an engagement signal |
| `_et` | `engagement_time_ms` | whole milliseconds |
| `dl`, `dr` | `page_url`, `page_referrer` | scrubbed; campaign from `dl`; `ir=1` drops `dr` |
| `epn.value` (or a numeric `ep.value`) | `value` | |
| `cu` (or `ep.currency`) | `currency` | upper-cased |
| `ep.transaction_id` | `transaction_id` | |
| `ep.event_id` | `event_id` | as the Measurement Protocol's `params.event_id`; else random |
| other `ep.*`, numeric `epn.*` | `Hit.params` | read, not stored (no canonical field) |
| `sct`, `seg`, `_s`, `_ss`, `_fv`, `_p`, `dt`, `ul`, `sr`, `up.*`, `pr*`, ... | nothing | |
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from pipeline.collector.ga4 import GA4_MAX_EVENTS
from pipeline.collector.hits import (
    MAX_URL_LENGTH,
    Hit,
    optional_string,
    required_string,
)
from pipeline.events.reasons import Reason, Rejected

GTAG_PROTOCOL_VERSION = "2"
# The same bound per request as the Measurement Protocol's `events` list.
GTAG_MAX_EVENTS = GA4_MAX_EVENTS
# GA4's event name rule (as for the Measurement Protocol's `events[].name`).
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_STRING_PARAM = "ep."
_NUMBER_PARAM = "epn."
_TRUE = frozenset({"1", "true"})
# What the lake's 64-bit integer column holds.
_MAX_ENGAGEMENT_MS = 2**63 - 1


def parse_gtag(query: str, body: bytes) -> list[Hit | Rejected]:
    """One Hit or Rejected per event; raises Rejected when the request itself is bad."""
    shared = _query_params(query)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.BAD_TEXT, "the body must be UTF-8 text") from None
    lines = [line for line in _LINE_BREAK.split(text) if line.strip()]
    if len(lines) > GTAG_MAX_EVENTS:
        raise Rejected(
            Reason.TOO_MANY_EVENTS,
            f"{len(lines)} events (body lines); at most {GTAG_MAX_EVENTS} per request",
        )
    if not lines and not shared:
        raise Rejected(Reason.NO_EVENTS, "no params in the query string and no body lines")
    batch = [shared | _query_params(line) for line in lines] or [shared]
    outcomes: list[Hit | Rejected] = []
    for position, params in enumerate(batch):
        try:
            outcomes.append(_gtag_event(params, position))
        except Rejected as rejected:
            outcomes.append(rejected)
    return outcomes


def _query_params(text: str) -> dict[str, str]:
    # A repeated key: the last one wins.
    return dict(parse_qsl(text.strip(), keep_blank_values=True))


def _gtag_event(params: dict[str, str], position: int) -> Hit:
    version = params.get("v")
    if version is None:
        raise Rejected(Reason.MISSING_FIELD, "v (the protocol version, 2) is required")
    if version != GTAG_PROTOCOL_VERSION:
        raise Rejected(Reason.BAD_ENUM, f"v must be {GTAG_PROTOCOL_VERSION} (GA4)")
    measurement_id = required_string(params, "tid")
    client_id = required_string(params, "cid")
    name = required_string(params, "en")
    if not _EVENT_NAME.fullmatch(name):
        raise Rejected(
            Reason.BAD_EVENT_NAME,
            "en must start with a letter and hold at most 40 letters, digits or _",
        )
    event_params = _event_params(params)
    referrer = optional_string(params, "dr", max_length=MAX_URL_LENGTH)
    return Hit(
        dialect="gtag",
        event_name=name,
        site_id=measurement_id,
        event_id=optional_string(params, "ep.event_id"),
        page_url=optional_string(params, "dl", max_length=MAX_URL_LENGTH),
        # `ir` (ignore referrer): the site marked this referrer as its own.
        page_referrer=None if params.get("ir", "").lower() in _TRUE else referrer,
        value=_value(params),
        currency=_currency(params),
        transaction_id=optional_string(params, "ep.transaction_id"),
        session_id=optional_string(params, "sid"),
        engagement_time_ms=_engagement(params.get("_et")),
        client_id=client_id,
        user_id=optional_string(params, "uid"),
        position=position,
        params=event_params,
    )


def _event_params(params: dict[str, str]) -> dict[str, Any]:
    """`ep.*` as strings and `epn.*` as numbers, by their names (not stored)."""
    typed: dict[str, Any] = {}
    for key, value in params.items():
        if key.startswith(_STRING_PARAM):
            typed[key.removeprefix(_STRING_PARAM)] = value
        elif key.startswith(_NUMBER_PARAM) and _NUMBER.fullmatch(value.strip()):
            typed[key.removeprefix(_NUMBER_PARAM)] = float(value)
    return typed


def _value(params: dict[str, str]) -> float | None:
    key = "epn.value" if "epn.value" in params else "ep.value"
    raw = params.get(key, "").strip()
    if not raw:
        return None
    if not _NUMBER.fullmatch(raw):
        raise Rejected(Reason.WRONG_TYPE, f"{key} must be a number")
    return float(raw)


def _currency(params: dict[str, str]) -> str | None:
    currency = optional_string(params, "cu") or optional_string(params, "ep.currency")
    return None if currency is None else currency.strip().upper()


def _engagement(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    # Past 19 significant digits it is out of range; int() would refuse past 4300 digits.
    too_long = len(value.lstrip("0")) > len(str(_MAX_ENGAGEMENT_MS))
    if not value.isascii() or not value.isdigit() or too_long or int(value) > _MAX_ENGAGEMENT_MS:
        raise Rejected(Reason.WRONG_TYPE, "_et must be a whole number of milliseconds")
    return int(value)
