"""GA4 Measurement Protocol requests: `POST /mp/collect` and its validation server
`POST /debug/mp/collect`, on one path.

`parse_mp` reads a body into one `Hit` per event and a list of `Finding`s: what is wrong,
where (`fieldPath`), with Google's validation code and our reason code. `check_mp` takes
the clean hits on through the enrichment steps and validation
(pipeline.collector.enrichment), whose rejections become findings too. /mp/collect turns
the findings into rejections (a bad event is rejected with its one-line reason, the valid
events beside it still land); /debug/mp/collect answers them as Google's
`validationMessages` and produces nothing.

Google's rules, from the Measurement Protocol docs ("Send events": Limitations;
"Reference": Reserved names; "Validate events": ValidationCode):

- at most 25 events a request, 25 params an event, 25 user properties a request, 10
  custom params an item; a body under 130 kB;
- event, param and item param names: at most 40 characters, letters, digits and `_`,
  starting with a letter (else NAME_INVALID, as Google answers `_badEventName`); user
  property names likewise, at most 24 characters;
- param values at most 100 characters (page_location 1000, page_referrer 420, page_title
  300: Google's collection limits; session_id and session_number are exempt), user
  property values at most 36 (else VALUE_OUT_OF_BOUNDS);
- reserved event names, param and user property names, and the prefixes `firebase_`,
  `ga_`, `google_` (and `gtag.` for params): NAME_RESERVED.

User properties are checked and then dropped: the canonical event has no place for them.
Those that look like personal data (`looks_personal`) are dropped before any check.

Each hit keeps its position in the request and its params as sent: the event id a retry
must reproduce is derived from them (pipeline.collector.enrichment).
"""

from __future__ import annotations

import hmac
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, TypeVar

from pipeline.collector.enrichment import Dropped, Ingestor, RequestContext
from pipeline.collector.hits import (
    MAX_URL_LENGTH,
    Hit,
    optional_micros,
    optional_string,
    require_object,
    required_string,
    string_map,
)
from pipeline.config import Settings
from pipeline.events.decode import decode_json
from pipeline.events.personal_data import contains_email
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.validation import Event

# -- Google's limits --------------------------------------------------------------------------

GA4_MAX_EVENTS = 25
GA4_MAX_PARAMS = 25  # per event, `items` counted as one
GA4_MAX_USER_PROPERTIES = 25  # per request
GA4_MAX_ITEM_CUSTOM_PARAMS = 10  # per item, beyond `ITEM_FIELDS`
GA4_MAX_NAME_LENGTH = 40  # event, param and item param names
GA4_MAX_USER_PROPERTY_NAME_LENGTH = 24
GA4_MAX_USER_PROPERTY_VALUE_LENGTH = 36
GA4_MAX_PARAM_VALUE_LENGTH = 100  # a standard property's (360: 500)
# Google's event collection limits let the page params be longer (support answer 9267744).
GA4_PARAM_VALUE_LENGTHS = {"page_location": 1000, "page_referrer": 420, "page_title": 300}
# "This limit doesn't apply to the session_id and session_number parameters."
_UNBOUNDED_PARAMS = frozenset({"session_id", "session_number"})
# "The post body must be smaller than 130kB": read as KiB, so that nothing Google takes
# is refused. The GA4 routes allow this much even when collector.max_body_bytes is lower.
GA4_MAX_BODY_BYTES = 130 * 1024

# -- Google's reserved names (Measurement Protocol reference, "Reserved names") ---------------

# The reference's event names (its current list adds app_install and notification_send),
# with those its earlier lists and Firebase's SDKs also reserve (app_background,
# app_store_subscription_*, in_app_purchase, session_start_with_rollout). screen_view and
# ad_impression are reserved for app streams only: a Measurement Protocol client_id is a
# web stream's, so they are taken. page_view is not reserved here.
RESERVED_EVENT_NAMES = frozenset(
    {
        "ad_activeview", "ad_click", "ad_exposure", "ad_query", "ad_reward",
        "adunit_exposure", "app_background", "app_clear_data", "app_exception",
        "app_install", "app_remove", "app_store_refund", "app_store_subscription_cancel",
        "app_store_subscription_convert", "app_store_subscription_renew", "app_update",
        "app_upgrade", "dynamic_link_app_open", "dynamic_link_app_update",
        "dynamic_link_first_open", "error", "firebase_campaign",
        "firebase_in_app_message_action", "firebase_in_app_message_dismiss",
        "firebase_in_app_message_impression", "first_open", "first_visit", "in_app_purchase",
        "notification_dismiss", "notification_foreground", "notification_open",
        "notification_receive", "notification_send", "os_update", "session_start",
        "session_start_with_rollout", "user_engagement",
    }
)  # fmt: skip
RESERVED_EVENT_PREFIXES = ("firebase_", "ga_", "google_")  # and "_", which no name may start
RESERVED_PARAM_NAMES = frozenset({"firebase_conversion"})
RESERVED_PARAM_PREFIXES = ("firebase_", "ga_", "google_", "gtag.")
RESERVED_USER_PROPERTY_NAMES = frozenset(
    {"first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id",
     "first_open_after_install"}
)  # fmt: skip
RESERVED_USER_PROPERTY_PREFIXES = ("firebase_", "ga_", "google_")
# The item fields GA4 documents for e-commerce events; any other item param is custom.
ITEM_FIELDS = frozenset(
    {
        "item_id", "item_name", "affiliation", "coupon", "discount", "index", "item_brand",
        "item_category", "item_category2", "item_category3", "item_category4",
        "item_category5", "item_list_id", "item_list_name", "item_variant", "location_id",
        "price", "quantity", "creative_name", "creative_slot", "promotion_id",
        "promotion_name",
    }
)  # fmt: skip

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[A-Za-z0-9_]+")  # shown as is in a field path; others quoted
_CAMPAIGN_PARAMS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "campaign": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
_CAMPAIGN_PARAM_NAMES = frozenset(_CAMPAIGN_PARAMS)

# -- personal data in user properties ---------------------------------------------------------

# A user property is personal data when its name holds one of these (lower-cased)...
_PERSONAL_NAME_PARTS = ("mail", "phone", "name")
# ...or one of these as a whole `_`-separated word, or its value holds an e-mail address.
_PERSONAL_NAME_WORDS = frozenset(
    {"tel", "mobile", "address", "street", "zip", "postcode", "birthday", "birthdate", "dob",
     "ip"}
)  # fmt: skip


def looks_personal(name: str, value: object) -> bool:
    """The documented rule for user properties dropped unseen as personal data."""
    lowered = name.lower()
    if any(part in lowered for part in _PERSONAL_NAME_PARTS):
        return True
    if _PERSONAL_NAME_WORDS & set(lowered.split("_")):
        return True
    if isinstance(value, dict):
        value = value.get("value")
    return isinstance(value, str) and contains_email(value)


# -- findings ---------------------------------------------------------------------------------


class ValidationCode(StrEnum):
    """Google's `validationCode`s ("Validate events")."""

    VALUE_INVALID = "VALUE_INVALID"
    VALUE_REQUIRED = "VALUE_REQUIRED"
    NAME_INVALID = "NAME_INVALID"
    NAME_RESERVED = "NAME_RESERVED"
    VALUE_OUT_OF_BOUNDS = "VALUE_OUT_OF_BOUNDS"
    EXCEEDED_MAX_ENTITIES = "EXCEEDED_MAX_ENTITIES"
    NAME_DUPLICATED = "NAME_DUPLICATED"


_CODE_FOR_REASON: dict[str, ValidationCode] = {
    Reason.MISSING_FIELD: ValidationCode.VALUE_REQUIRED,
    Reason.EMPTY_FIELD: ValidationCode.VALUE_REQUIRED,
    Reason.NO_EVENTS: ValidationCode.VALUE_REQUIRED,
    Reason.TOO_LONG: ValidationCode.VALUE_OUT_OF_BOUNDS,
    Reason.BODY_TOO_LARGE: ValidationCode.VALUE_OUT_OF_BOUNDS,
    Reason.TOO_MANY_EVENTS: ValidationCode.EXCEEDED_MAX_ENTITIES,
    Reason.TOO_MANY_PARAMS: ValidationCode.EXCEEDED_MAX_ENTITIES,
    Reason.TOO_MANY_USER_PROPERTIES: ValidationCode.EXCEEDED_MAX_ENTITIES,
    Reason.BAD_EVENT_NAME: ValidationCode.NAME_INVALID,
    Reason.BAD_NAME: ValidationCode.NAME_INVALID,
    Reason.RESERVED_NAME: ValidationCode.NAME_RESERVED,
    Reason.DUPLICATED_NAME: ValidationCode.NAME_DUPLICATED,
}


def validation_code(reason: str) -> ValidationCode:
    """Google's code for one of our reasons; any other bad value is VALUE_INVALID."""
    return _CODE_FOR_REASON.get(reason, ValidationCode.VALUE_INVALID)


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a request: where, what (our reason, Google's code) and why.

    The detail names fields and names, never a param or user property value.
    """

    field_path: str
    reason: str
    detail: str
    index: int | None = None  # the event's position in `events`; None: the request
    fatal: bool = False  # the request as a whole cannot be taken

    @classmethod
    def of(
        cls, rejected: Rejected, path: str, index: int | None = None, fatal: bool = False
    ) -> Finding:
        return cls(path, rejected.reason, rejected.detail, index, fatal)

    @property
    def code(self) -> ValidationCode:
        return validation_code(self.reason)

    def rejected(self) -> Rejected:
        return Rejected(self.reason, f"{self.detail} ({self.code})")

    def problem(self) -> dict[str, Any]:
        """/mp/collect's entry for it in a 400's `rejected` list."""
        return {
            "index": self.index,
            "field": self.field_path,
            "reason": self.reason,
            "validation_code": str(self.code),
            "error": self.rejected().line(),
        }

    def message(self) -> dict[str, str]:
        """/debug/mp/collect's entry for it: Google's ValidationMessage."""
        return {
            "fieldPath": self.field_path,
            "description": self.detail,
            "validationCode": str(self.code),
        }


# -- routing and the api_secret ---------------------------------------------------------------


def site_for_request(settings: Settings, measurement_id: str | None) -> str:
    """The site a request's `measurement_id` names (a G-... id or the site id itself)."""
    if not measurement_id:
        raise Rejected(Reason.MISSING_FIELD, "query parameter measurement_id (the site) is needed")
    site = settings.site_for_measurement_id(measurement_id)
    if site is None:
        raise Rejected(
            Reason.UNKNOWN_SITE,
            "measurement_id is neither a site in `sites` nor a [ga4] measurement_id",
        )
    return site


def check_api_secret(settings: Settings, site: str, api_secret: str | None) -> bool:
    """When the site has an api_secret, the request must carry it (compared in constant
    time); True when it did, False when the site has none (anyone may send). The secret is
    never part of a message: neither the expected nor the given."""
    stream = settings.ga4.get(site)
    expected = stream.api_secret if stream is not None else None
    if expected is None:
        return False
    if not api_secret:
        raise Rejected(Reason.MISSING_API_SECRET, "query parameter api_secret is needed")
    given = api_secret.encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected.get_secret_value().encode("utf-8", "replace")):
        raise Rejected(Reason.BAD_API_SECRET, "api_secret is not this site's")
    return True


# -- the shared path --------------------------------------------------------------------------


def first_fatal(findings: list[Finding]) -> Finding | None:
    """The first finding that sinks the whole request, if any."""
    return next((finding for finding in findings if finding.fatal), None)


@dataclass
class MpRequest:
    """A parsed request: a hit per event (None where the event has a finding)."""

    hits: list[Hit | None] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    personal_user_properties: int = 0  # dropped unseen

    @property
    def fatal(self) -> Finding | None:
        return first_fatal(self.findings)


@dataclass
class MpCheck:
    """A request taken as far as a canonical event per good event."""

    events: list[Event] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> count

    @property
    def fatal(self) -> Finding | None:
        return first_fatal(self.findings)

    def first_per_event(self) -> list[Finding]:
        """The request's findings and each rejected event's first: /mp/collect's list."""
        seen: set[int] = set()
        chosen = []
        for finding in self.findings:
            if finding.index is None or finding.index not in seen:
                chosen.append(finding)
            if finding.index is not None:
                seen.add(finding.index)
        return chosen


def check_mp(site: str | None, body: bytes, ingestor: Ingestor, request: RequestContext) -> MpCheck:
    """Both routes' path: parse, then each clean hit through enrichment and validation.

    Without a site (the validation server was given an unknown measurement_id) only the
    body's own rules are checked.
    """
    parsed = parse_mp(site or "", body)
    check = MpCheck(findings=list(parsed.findings))
    if parsed.personal_user_properties:
        check.dropped["personal_user_property"] += parsed.personal_user_properties
    if parsed.fatal is None and site is not None:
        for index, hit in enumerate(parsed.hits):
            if hit is None:
                continue
            try:
                check.events.append(ingestor.to_canonical(hit, request))
            except Rejected as rejected:
                check.findings.append(Finding.of(rejected, f"events[{index}]", index))
            except Dropped as dropped:
                check.dropped[dropped.reason] += 1
    # The request's own findings first, then by event, each event's in the order found.
    check.findings.sort(key=lambda finding: -1 if finding.index is None else finding.index)
    return check


def parse_ga4(measurement_id: str | None, body: bytes) -> list[Hit | Rejected]:
    """One Hit or Rejected per event (its first finding); raises Rejected when the request
    itself is bad. `measurement_id` is taken as the site id."""
    if not measurement_id:
        raise Rejected(Reason.MISSING_FIELD, "query parameter measurement_id (the site) is needed")
    parsed = parse_mp(measurement_id, body)
    if parsed.fatal is not None:
        raise parsed.fatal.rejected()
    first: dict[int, Finding] = {}
    for finding in parsed.findings:
        if finding.index is not None:
            first.setdefault(finding.index, finding)
    return [
        hit if hit is not None else first[index].rejected() for index, hit in enumerate(parsed.hits)
    ]


def parse_mp(site: str, body: bytes) -> MpRequest:
    """The body -> a hit per event and every finding, in the order found."""
    request = MpRequest()
    try:
        payload = require_object(_decode(body), "body")
    except Rejected as rejected:
        request.findings.append(Finding.of(rejected, "body", fatal=True))
        return request
    request.findings += _duplicates(payload, "", None, fatal=True)
    take = _Taker(request)
    client_id = take("client_id", lambda: required_string(payload, "client_id"), None)
    user_id = take("user_id", lambda: optional_string(payload, "user_id"), None)
    request_ts = take(
        "timestamp_micros", lambda: optional_micros(payload, "timestamp_micros"), None
    )
    device: dict[str, str] = take("device", lambda: string_map(payload.get("device"), "device"), {})
    location: dict[str, str] = take(
        "user_location", lambda: string_map(payload.get("user_location"), "user_location"), {}
    )
    _check_user_properties(payload.get("user_properties"), request)
    events = payload.get("events")
    if events is None:
        request.findings.append(_fatal("events", Reason.MISSING_FIELD, "events is required"))
        return request
    if not isinstance(events, list):
        detail = "events must be a list of {name, params}"
        request.findings.append(_fatal("events", Reason.WRONG_TYPE, detail))
        return request
    if not events:
        request.findings.append(_fatal("events", Reason.NO_EVENTS, "events is empty"))
        return request
    if len(events) > GA4_MAX_EVENTS:
        detail = f"{len(events)} events; at most {GA4_MAX_EVENTS} per request"
        request.findings.append(_fatal("events", Reason.TOO_MANY_EVENTS, detail))
    template = Hit(
        dialect="ga4",
        event_name="",
        site_id=site,
        event_ts=request_ts,
        client_id=client_id,
        user_id=user_id,
        device=device,
        country=location.get("country_id"),
    )
    for position, raw_event in enumerate(events):
        findings = _event_findings(position, raw_event)
        if not findings:
            try:
                request.hits.append(_ga4_event(template, position, raw_event))
                continue
            except Rejected as rejected:
                findings = [Finding.of(rejected, f"events[{position}]", position)]
        request.findings += findings
        request.hits.append(None)
    return request


# -- parsing helpers --------------------------------------------------------------------------

_T = TypeVar("_T")


def _fatal(path: str, reason: Reason, detail: str) -> Finding:
    return Finding(path, reason, detail, fatal=True)


class _Taker:
    """Reads one top-level field; a bad one becomes a finding that sinks the request."""

    def __init__(self, request: MpRequest) -> None:
        self.request = request

    def __call__(self, path: str, read: Callable[[], _T], default: _T) -> _T:
        try:
            return read()
        except Rejected as rejected:
            self.request.findings.append(Finding.of(rejected, path, fatal=True))
            return default


class _Object(dict[str, Any]):
    """A JSON object that remembers the names it was given more than once."""

    duplicated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    if len(result) < len(pairs):
        counts = Counter(name for name, _ in pairs)
        result.duplicated = tuple(name for name, count in counts.items() if count > 1)
    return result


def _decode(body: bytes) -> object:
    try:
        return json.loads(body, object_pairs_hook=_object)
    except (ValueError, RecursionError):
        decode_json(body)  # raises the rejection every other reader of JSON gives
        raise Rejected(Reason.BAD_JSON, "body is not valid JSON") from None


def _duplicates(value: object, path: str, index: int | None, fatal: bool = False) -> list[Finding]:
    return [
        Finding(
            _join(path, name),
            Reason.DUPLICATED_NAME,
            f"{_join(path, name)} is given more than once",
            index,
            fatal,
        )
        for name in getattr(value, "duplicated", ())
    ]


def _join(path: str, name: str) -> str:
    shown = name if _PLAIN.fullmatch(name) and len(name) <= 64 else json.dumps(name[:64])
    return f"{path}.{shown}" if path else shown


def _event_findings(position: int, raw_event: object) -> list[Finding]:
    path = f"events[{position}]"
    if not isinstance(raw_event, dict):
        return [Finding(path, Reason.NOT_AN_OBJECT, f"{path} must be a JSON object", position)]
    findings = _duplicates(raw_event, path, position)
    name = raw_event.get("name")
    if name is None:
        findings.append(Finding(f"{path}.name", Reason.MISSING_FIELD, "name is required", position))
    elif not isinstance(name, str):
        detail = "name must be a string"
        findings.append(Finding(f"{path}.name", Reason.WRONG_TYPE, detail, position))
    else:
        findings += _name_findings(
            name, f"{path}.name", position, "event name", GA4_MAX_NAME_LENGTH,
            Reason.BAD_EVENT_NAME, RESERVED_EVENT_NAMES, RESERVED_EVENT_PREFIXES,
        )  # fmt: skip
    params = raw_event.get("params")
    if params is not None and not isinstance(params, dict):
        detail = "params must be a JSON object"
        findings.append(Finding(f"{path}.params", Reason.NOT_AN_OBJECT, detail, position))
    elif params is not None:
        findings += _params_findings(params, f"{path}.params", position)
    return findings


def _name_findings(
    name: str,
    path: str,
    index: int | None,
    what: str,
    max_length: int,
    bad_reason: Reason,
    reserved: frozenset[str],
    prefixes: tuple[str, ...],
) -> list[Finding]:
    if len(name) > max_length or not _NAME.fullmatch(name):
        detail = (
            f"{what} {_shown(name)} must start with a letter and hold at most {max_length}"
            " letters, digits or _"
        )
        return [Finding(path, bad_reason, detail, index)]
    if name in reserved or name.startswith(prefixes):
        detail = f"{what} {_shown(name)} is reserved by Google Analytics"
        return [Finding(path, Reason.RESERVED_NAME, detail, index)]
    return []


def _shown(name: str) -> str:
    # Names are echoed to the client that sent them, never logged; long ones cut short.
    return json.dumps(name if len(name) <= 64 else name[:64] + "...")


def _fine_param_name(name: str) -> bool:
    """The param name passes every name rule (the common case, checked without a path).
    A name longer than Google allows fails before the cache: it never holds one."""
    return len(name) <= GA4_MAX_NAME_LENGTH and _fine_short_param_name(name)


# Batches repeat the same few param names event after event. At most 4096 names of at
# most 40 characters: under 1.5 MB.
@lru_cache(maxsize=4096)
def _fine_short_param_name(name: str) -> bool:
    return (
        _NAME.fullmatch(name) is not None
        and name not in RESERVED_PARAM_NAMES
        and not name.startswith(RESERVED_PARAM_PREFIXES)
    )


def _params_findings(params: dict[str, Any], path: str, index: int) -> list[Finding]:
    findings = _duplicates(params, path, index)
    if len(params) > GA4_MAX_PARAMS:
        detail = f"{path} holds {len(params)} params; at most {GA4_MAX_PARAMS} per event"
        findings.append(Finding(path, Reason.TOO_MANY_PARAMS, detail, index))
    for name, value in params.items():
        if name != "items" and _fine_param_name(name) and _fine_value(name, value):
            continue  # nothing to report: no field path to build
        param_path = _join(path, name)
        findings += _name_findings(
            name, param_path, index, "param name", GA4_MAX_NAME_LENGTH, Reason.BAD_NAME,
            RESERVED_PARAM_NAMES, RESERVED_PARAM_PREFIXES,
        )  # fmt: skip
        if name == "items":
            findings += _items_findings(value, param_path, index)
        else:
            limit = (
                None
                if name in _UNBOUNDED_PARAMS
                else GA4_PARAM_VALUE_LENGTHS.get(name, GA4_MAX_PARAM_VALUE_LENGTH)
            )
            findings += _value_findings(value, param_path, index, limit)
    return findings


def _items_findings(items: object, path: str, index: int) -> list[Finding]:
    if not isinstance(items, list):
        return [Finding(path, Reason.WRONG_TYPE, f"{path} must be a list of objects", index)]
    findings: list[Finding] = []
    for position, item in enumerate(items):
        item_path = f"{path}[{position}]"
        if not isinstance(item, dict):
            detail = f"{item_path} must be a JSON object"
            findings.append(Finding(item_path, Reason.NOT_AN_OBJECT, detail, index))
            continue
        findings += _duplicates(item, item_path, index)
        custom = len(item.keys() - ITEM_FIELDS)
        if custom > GA4_MAX_ITEM_CUSTOM_PARAMS:
            detail = (
                f"{item_path} holds {custom} custom params; at most "
                f"{GA4_MAX_ITEM_CUSTOM_PARAMS} per item"
            )
            findings.append(Finding(item_path, Reason.TOO_MANY_PARAMS, detail, index))
        for name, value in item.items():
            param_path = _join(item_path, name)
            findings += _name_findings(
                name, param_path, index, "item param name", GA4_MAX_NAME_LENGTH,
                Reason.BAD_NAME, RESERVED_PARAM_NAMES, RESERVED_PARAM_PREFIXES,
            )  # fmt: skip
            findings += _value_findings(value, param_path, index, GA4_MAX_PARAM_VALUE_LENGTH)
    return findings


def _fine_value(name: str, value: object) -> bool:
    """A param value _value_findings would find nothing wrong with (the common case)."""
    if value is None or isinstance(value, bool | int | float):
        return True
    if not isinstance(value, str):
        return False
    if name in _UNBOUNDED_PARAMS:
        return True
    return len(value) <= GA4_PARAM_VALUE_LENGTHS.get(name, GA4_MAX_PARAM_VALUE_LENGTH)


def _value_findings(
    value: object, path: str, index: int | None, limit: int | None
) -> list[Finding]:
    if value is None or isinstance(value, bool | int | float):
        return []
    if not isinstance(value, str):
        return [Finding(path, Reason.WRONG_TYPE, f"{path} must be a string or a number", index)]
    if limit is not None and len(value) > limit:
        return [Finding(path, Reason.TOO_LONG, f"{path} is longer than {limit} characters", index)]
    return []


def _check_user_properties(raw: object, request: MpRequest) -> None:
    """Checked against Google's rules, then dropped (none reaches Kafka). A bad one is a
    finding of the request that does not sink its events."""
    path = "user_properties"
    if raw is None:
        return
    if not isinstance(raw, dict):
        detail = "user_properties must be a JSON object of {name: {value}}"
        request.findings.append(Finding(path, Reason.NOT_AN_OBJECT, detail))
        return
    request.findings += _duplicates(raw, path, None)
    if len(raw) > GA4_MAX_USER_PROPERTIES:
        detail = f"{len(raw)} user properties; at most {GA4_MAX_USER_PROPERTIES} per request"
        request.findings.append(Finding(path, Reason.TOO_MANY_USER_PROPERTIES, detail))
    for name, entry in raw.items():
        if looks_personal(name, entry):
            request.personal_user_properties += 1
            continue
        entry_path = _join(path, name)
        request.findings += _name_findings(
            name, entry_path, None, "user property name", GA4_MAX_USER_PROPERTY_NAME_LENGTH,
            Reason.BAD_NAME, RESERVED_USER_PROPERTY_NAMES, RESERVED_USER_PROPERTY_PREFIXES,
        )  # fmt: skip
        if not isinstance(entry, dict):
            detail = f"{entry_path} must be an object {{value}}"
            request.findings.append(Finding(entry_path, Reason.NOT_AN_OBJECT, detail))
        elif "value" not in entry:
            detail = f"{entry_path}.value is required"
            request.findings.append(Finding(f"{entry_path}.value", Reason.MISSING_FIELD, detail))
        else:
            request.findings += _value_findings(
                entry["value"], f"{entry_path}.value", None, GA4_MAX_USER_PROPERTY_VALUE_LENGTH
            )


def _ga4_event(template: Hit, position: int, raw_event: dict[str, Any]) -> Hit:
    name = raw_event["name"]
    params = raw_event.get("params") or {}
    session_id = params.get("session_id")
    if session_id is not None and (
        isinstance(session_id, bool) or not isinstance(session_id, str | int)
    ):
        raise Rejected(Reason.WRONG_TYPE, "params.session_id must be a string or integer")
    campaign = (
        {
            utm: value
            for param, utm in _CAMPAIGN_PARAMS.items()
            if (value := optional_string(params, param, prefix="params.")) is not None
        }
        if not _CAMPAIGN_PARAM_NAMES.isdisjoint(params)
        else {}  # most events carry no campaign params: skip five lookups
    )
    return Hit(
        dialect="ga4",
        event_name=name,
        site_id=template.site_id,
        event_ts=optional_micros(raw_event, "timestamp_micros") or template.event_ts,
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
    # GA4 clients send engagement_time_msec as a number or a numeric string. ASCII digits
    # only: int() refuses "²", which str.isdigit() takes (validation rejects the string).
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value
