"""The one path from a raw payload to a canonical event or a named rejection.

Shaped like Plausible's ingestion pipeline: a straight list of small named steps. Each
step either returns the (enriched) event or raises `Rejected` with a reason code from
`Reason`. The collector runs it after its privacy steps; the consumer and `import` run it
again on everything they read, so it is kept cheap: no JSON Schema engine on the hot path,
but the field rules (types, lengths, enums, patterns, required) are read once from
schemas/canonical_event.schema.json, the single source of truth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pipeline.events.codes import country_codes, currency_codes
from pipeline.events.personal_data import (
    DESCRIPTIONS,
    personal_data_in,
    redact_personal_data,
    strip_control_characters,
)
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.schema import load_schema
from pipeline.events.site_rules import ANONYMOUS, SiteRules, default_site_rules
from pipeline.events.timestamps import (
    MICROS,
    MIN_EVENT_MICROS,
    TimestampWindow,
    format_event_ts,
    parse_event_ts,
)


@dataclass(frozen=True)
class _FieldRule:
    kind: str  # "string" | "integer" | "number" | "timestamp"
    required: bool
    max_length: int | None = None
    min_length: int = 0
    enum: frozenset[str] | None = None
    minimum: float | None = None
    maximum: float | None = None


@cache
def _field_rules() -> dict[str, _FieldRule]:
    schema = load_schema("canonical_event")
    required = set(schema["required"])
    rules = {}
    for name, spec in schema["properties"].items():
        types = spec.get("type", [])
        types = [types] if isinstance(types, str) else types
        if spec.get("x-arrow-type", "").startswith("timestamp"):
            kind = "timestamp"
        else:
            (kind,) = [t for t in types if t != "null"]
        enum = spec.get("enum")
        rules[name] = _FieldRule(
            kind=kind,
            required=name in required,
            max_length=spec.get("maxLength"),
            min_length=spec.get("minLength", 0),
            enum=frozenset(v for v in enum if v is not None) if enum else None,
            minimum=spec.get("minimum"),
            maximum=spec.get("maximum"),
        )
    return rules


def field_rules() -> dict[str, _FieldRule]:
    """The field rules read from the schema; the bulk decoder (batch_decode) derives its
    types from these same rules, so the two paths cannot drift apart."""
    return _field_rules()


# -- steps --------------------------------------------------------------------------------

Event = dict[str, Any]


def require_object(raw: object) -> Event:
    if not isinstance(raw, Mapping):
        raise Rejected(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(raw).__name__}")
    return dict(raw)


def drop_nulls(event: Event) -> Event:
    # An optional field sent as null means "absent"; keeping one spelling simplifies the rest.
    return {key: value for key, value in event.items() if value is not None}


def reject_unknown_fields(event: Event) -> Event:
    unknown = event.keys() - _field_rules().keys()
    if unknown:
        raise Rejected(Reason.UNKNOWN_FIELD, f"unknown field {sorted(unknown)[0]!r}")
    return event


def require_fields(event: Event) -> Event:
    for name, rule in _field_rules().items():
        if rule.required and name not in event:
            raise Rejected(Reason.MISSING_FIELD, f"{name} is required")
    return event


def strip_controls(event: Event) -> Event:
    """Control and invisible format characters (pipeline.events.personal_data) removed
    from every text field: nothing downstream stores them, and they cannot hide personal
    data from the checks below or reach an operator's terminal."""
    rules = _field_rules()
    for name, value in event.items():
        if isinstance(value, str) and rules[name].kind == "string":
            event[name] = strip_control_characters(value)
    return event


def check_field_types(event: Event) -> Event:
    for name, value in event.items():
        rule = _field_rules()[name]
        if rule.kind == "string":
            _check_string(name, value, rule)
        elif rule.kind in ("integer", "number"):
            _check_number(name, value, rule)
    return event


def _check_string(name: str, value: object, rule: _FieldRule) -> None:
    if not isinstance(value, str):
        raise Rejected(Reason.WRONG_TYPE, f"{name} must be a string")
    if len(value) < max(rule.min_length, 1 if rule.required else 0):
        raise Rejected(Reason.EMPTY_FIELD, f"{name} must not be empty")
    if rule.max_length is not None and len(value) > rule.max_length:
        raise Rejected(Reason.TOO_LONG, f"{name} is longer than {rule.max_length} characters")
    if rule.enum is not None and value not in rule.enum:
        raise Rejected(Reason.BAD_ENUM, f"{name} must be one of {sorted(rule.enum)}")
    if not value.isascii() and not _is_unicode(value):
        # JSON lets "\ud800" through; Kafka, Arrow and Parquet need valid UTF-8.
        raise Rejected(Reason.BAD_TEXT, f"{name} holds an unpaired surrogate (not valid text)")


def _is_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


INT64_LIMIT = 2**63  # an integer field holds -2**63 .. 2**63 - 1
EXACT_FLOAT_LIMIT = 2**53  # beyond it a float64 no longer holds every integer exactly


def _check_number(name: str, value: object, rule: _FieldRule) -> None:
    # bool is an int in Python but never a number in JSON.
    integer_only = rule.kind == "integer"
    limit = INT64_LIMIT if integer_only else EXACT_FLOAT_LIMIT
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer_only and not isinstance(value, int))
    ):
        kind = "an integer" if integer_only else "a number"
        raise Rejected(Reason.WRONG_TYPE, f"{name} must be {kind}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected(Reason.VALUE_NOT_FINITE, f"{name} must be a finite number")
    # JSON integers have no bound, Arrow's columns do: an int64, or a float64 that holds
    # the integer exactly. One such event would otherwise fail a whole batch's conversion.
    if isinstance(value, int) and not -limit <= value <= limit - (1 if integer_only else 0):
        raise Rejected(Reason.WRONG_TYPE, f"{name} is out of range")
    if rule.minimum is not None and value < rule.minimum:
        raise Rejected(Reason.NEGATIVE_NUMBER, f"{name} must be >= {rule.minimum:g}")
    if rule.maximum is not None and value > rule.maximum:
        raise Rejected(Reason.NUMBER_TOO_LARGE, f"{name} must be <= {rule.maximum:g}")


def check_codes(event: Event) -> Event:
    currency = event.get("currency")
    if currency is not None and currency not in currency_codes():
        raise Rejected(Reason.BAD_CURRENCY, f"currency {currency!r} is not an ISO 4217 code")
    country = event.get("country")
    if country is not None and country not in country_codes():
        raise Rejected(Reason.BAD_COUNTRY, f"country {country!r} is not ISO 3166-1 alpha-2")
    return event


# Events whose value is an amount of money paid or paid back: never negative. A negative
# purchase would silently lower revenue; money returned is a refund event. An anonymous
# event's value is never negative either, whatever its name: anyone could send one to
# lower a goal's conversion value. Authenticated goal events may (GA4 style corrections).
AMOUNT_EVENTS = frozenset({"purchase", "refund"})


def check_amounts(event: Event) -> Event:
    value = event.get("value")
    if value is None or value >= 0:
        return event
    if event["event_name"] in AMOUNT_EVENTS:
        raise Rejected(
            Reason.NEGATIVE_AMOUNT,
            f"a {event['event_name']}'s value must not be negative (money returned is a refund)",
        )
    if event.get("trust") == ANONYMOUS:
        raise Rejected(Reason.NEGATIVE_AMOUNT, "an anonymous event's value must not be negative")
    return event


def normalise_event_ts(
    event: Event, now_micros: int, window: TimestampWindow, as_micros: bool = False
) -> Event:
    micros = parse_event_ts(event["event_ts"])
    future_limit = now_micros + int(window.max_future.total_seconds() * MICROS)
    if micros > future_limit:
        raise Rejected(Reason.TIMESTAMP_IN_FUTURE, "event_ts is beyond the allowed clock skew")
    past_limit = MIN_EVENT_MICROS
    if window.max_past is not None:
        past_limit = max(past_limit, now_micros - int(window.max_past.total_seconds() * MICROS))
    if micros < past_limit:
        raise Rejected(Reason.TIMESTAMP_TOO_OLD, "event_ts is older than the accepted window")
    event["event_ts"] = micros if as_micros else format_event_ts(micros)
    return event


# Ids and names that must hold no personal data (the collector hashes its own client and
# session ids; back ends producing straight to Kafka or importing files must send keyed
# hashes too). An e-mail address, IP address, phone number, GA client id or user agent
# sent as one would be stored as it is and link a person across days: refused.
IDENTIFIER_FIELDS = (
    "visitor_id", "user_id", "session_id", "event_id", "transaction_id", "event_name",
)  # fmt: skip
# Free text: personal data in it is redacted to a placeholder ("[email]"), the rest kept.
# Page URLs and referrers are free text too; pipeline.privacy.urls redacts them.
FREE_TEXT_FIELDS = (
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
    "click_id_type", "browser", "os",
)  # fmt: skip


def check_pseudonymous_ids(event: Event) -> Event:
    for name in IDENTIFIER_FIELDS:
        value = event.get(name)
        if value is None:
            continue
        kind = personal_data_in(value)
        if kind is not None:
            raise Rejected(
                Reason.NOT_PSEUDONYMOUS,
                f"{name} holds {DESCRIPTIONS[kind]}: send a keyed hash, never personal data",
            )
    return event


def redact_free_text(event: Event) -> Event:
    for name in FREE_TEXT_FIELDS:
        value = event.get(name)
        if value is not None:
            event[name] = redact_personal_data(value)
    return event


_STEPS: tuple[Callable[[Event], Event], ...] = (
    drop_nulls,
    reject_unknown_fields,
    require_fields,
    strip_controls,
    check_field_types,
    check_pseudonymous_ids,
    redact_free_text,
    check_amounts,
    check_codes,
)


# The steps that need the site's settings (pipeline.events.site_rules).


def check_anonymous_amounts(event: Event, rules: SiteRules) -> Event:
    site = event["site_id"]
    anonymous = event.get("trust") == ANONYMOUS
    if (
        anonymous
        and event["event_name"] in AMOUNT_EVENTS
        and not rules.counts_anonymous_amounts(site)
    ):
        raise Rejected(
            Reason.ANONYMOUS_PURCHASE,
            f"site {site!r} counts purchases and refunds from authenticated routes only "
            "(anonymous_purchases = false)",
        )
    return event


def check_value_bound(event: Event, rules: SiteRules) -> Event:
    value = event.get("value")
    if value is None:
        return event
    limit = rules.max_value(event["site_id"])
    if abs(rules.reporting_amount(value, event.get("currency"))) > limit:
        raise Rejected(
            Reason.VALUE_TOO_LARGE,
            f"value is beyond the site's max_event_value ({limit:g} {rules.currency})",
        )
    return event


_SITE_STEPS: tuple[Callable[[Event, SiteRules], Event], ...] = (
    check_anonymous_amounts,
    check_value_bound,
)


def validate_event(
    raw: object,
    *,
    now_micros: int,
    window: TimestampWindow,
    ts_as_micros: bool = False,
    rules: SiteRules | None = None,
) -> Event:
    """A canonical event with event_ts in canonical UTC text (for Kafka), or as epoch
    microseconds when `ts_as_micros` (for Arrow: no format-then-parse), or `Rejected`.
    `rules`: the sites' settings (default: the embedded defaults')."""
    event = require_object(raw)
    for step in _STEPS:
        event = step(event)
    site_rules = rules or default_site_rules()
    for site_step in _SITE_STEPS:
        event = site_step(event, site_rules)
    return normalise_event_ts(event, now_micros, window, as_micros=ts_as_micros)
