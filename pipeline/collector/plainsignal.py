"""PlainSignal-style request bodies (`POST /api/event`) -> `Hit`: cookie-free, no visitor id.

`{"name", "url", "referrer", "value", "currency", "site_id"}`; only name and url are
required, and the site defaults to the URL's host (pipeline.collector.enrichment).
"""

from __future__ import annotations

from pipeline.collector.hits import (
    MAX_NAME_LENGTH,
    MAX_URL_LENGTH,
    Hit,
    optional_string,
    require_object,
    required_string,
)
from pipeline.events.decode import decode_json
from pipeline.events.reasons import Reason, Rejected

_PLAINSIGNAL_KEYS = frozenset({"name", "url", "referrer", "value", "currency", "site_id"})


def parse_plainsignal(body: bytes) -> Hit:
    payload = require_object(decode_json(body), "body")
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
