"""Rejection reasons: the stable codes every bad input is reported with (HTTP answers,
the dead-letter topic, `lake/rejected/`, CLI reject lists)."""

from __future__ import annotations

from enum import StrEnum

from pipeline.events.personal_data import redact_personal_data, strip_control_characters

# How many rejections a command lists one by one; the rest are counted.
MAX_LISTED_REJECTS = 20


class Reason(StrEnum):
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    EMPTY_FIELD = "empty_field"
    TOO_LONG = "too_long"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    VALUE_NOT_FINITE = "value_not_finite"
    BAD_CURRENCY = "bad_currency"
    BAD_COUNTRY = "bad_country"
    BAD_ENUM = "bad_enum"
    NEGATIVE_NUMBER = "negative_number"
    NEGATIVE_AMOUNT = "negative_amount"
    NUMBER_TOO_LARGE = "number_too_large"  # beyond the schema's maximum
    BAD_TEXT = "bad_text"
    # An id or event name holding an e-mail, IP, phone number, GA client id or user agent.
    NOT_PSEUDONYMOUS = "not_pseudonymous"
    VALUE_TOO_LARGE = "value_too_large"  # beyond the site's max_event_value
    ANONYMOUS_PURCHASE = "anonymous_purchase"  # the site has anonymous_purchases = false
    # Request and dialect level (collector).
    BAD_JSON = "bad_json"
    NO_EVENTS = "no_events"
    TOO_MANY_EVENTS = "too_many_events"
    BAD_EVENT_NAME = "bad_event_name"
    UNKNOWN_SITE = "unknown_site"
    BAD_URL = "bad_url"
    BODY_TOO_LARGE = "body_too_large"
    BODY_TIMEOUT = "body_timeout"  # not all of the body arrived within its deadline
    CLIENT_DISCONNECTED = "client_disconnected"  # the client left before its body was in
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    # GA4 Measurement Protocol (collector/ga4.py): Google's limits and reserved names.
    TOO_MANY_PARAMS = "too_many_params"
    TOO_MANY_USER_PROPERTIES = "too_many_user_properties"
    BAD_NAME = "bad_name"  # a param, item param or user property name
    RESERVED_NAME = "reserved_name"
    DUPLICATED_NAME = "duplicated_name"
    MISSING_API_SECRET = "missing_api_secret"
    BAD_API_SECRET = "bad_api_secret"


class Rejected(Exception):
    """A payload that cannot become a canonical event; `reason` is a stable code.

    The detail may quote the input, and goes to HTTP answers, logs, the dead-letter topic
    and `lake/rejected/`: personal data in it is redacted and control characters
    stripped here, once, for all of them."""

    def __init__(self, reason: str, detail: str) -> None:
        detail = redact_personal_data(strip_control_characters(detail))
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def line(self) -> str:
        return f"{self.reason}: {self.detail}"
