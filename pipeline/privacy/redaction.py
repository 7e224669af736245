"""What a rejected record keeps for diagnosis (the dead-letter topic, `lake/rejected/`).

The reason, the field names and redacted values, never the raw payload: a rejected record
was not validated, so any field may hold a user agent, a raw client id, a phone number,
an e-mail or IP address. `redact_payload` is the one rule for it; the consumer's DLQ
messages and `import`'s and the consumer's rejected files all go through
pipeline.lake.store.RejectedPayload.redacted, which calls it. The rejection's detail is
already redacted where it is made (pipeline.events.reasons.Rejected).
"""

from __future__ import annotations

import json
import math

from pipeline.events.personal_data import redact_personal_data, strip_control_characters
from pipeline.events.validation import IDENTIFIER_FIELDS, field_rules

EMAIL_PLACEHOLDER = "[email]"
# What stands for a value that is not kept: an unknown field's, a nested one's, a whole
# payload that is not a JSON object.
WITHHELD = "(redacted)"
# A kept text value is cut here: enough to recognise it, never a 10 MB campaign.
MAX_KEPT_CHARS = 256
# Field names are kept (they say what was wrong), at most this many, each cut.
MAX_KEPT_FIELDS = 64
MAX_NAME_CHARS = 64


def redact_payload(text: str) -> str:
    """A rejected record's payload as JSON text that keeps its shape and nothing personal:
    each field name (redacted and cut), and for a canonical field its value, redacted and
    cut (numbers and booleans as they are); an unknown or nested value is withheld. A
    payload that is not a JSON object keeps only its length."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        return json.dumps(f"{WITHHELD}: {len(text)} characters, not a JSON object")
    kept = {
        _name(name): _value(name, value) for name, value in list(record.items())[:MAX_KEPT_FIELDS]
    }
    if len(record) > MAX_KEPT_FIELDS:
        kept["..."] = f"{len(record) - MAX_KEPT_FIELDS} more fields"
    return json.dumps(kept, ensure_ascii=False)


def _name(name: str) -> str:
    return redact_personal_data(strip_control_characters(name))[:MAX_NAME_CHARS]


def _value(name: str, value: object) -> object:
    rule = field_rules().get(name)
    if rule is None:
        return WITHHELD
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        cleaned = redact_personal_data(strip_control_characters(value))
        if name in IDENTIFIER_FIELDS and cleaned != strip_control_characters(value):
            return WITHHELD  # an id holding personal data says nothing more once redacted
        return cleaned[:MAX_KEPT_CHARS]
    numeric = rule.kind in ("integer", "number", "timestamp")
    if numeric and isinstance(value, int) and abs(value) < 2**63:
        return value
    if numeric and isinstance(value, float) and math.isfinite(value):
        return value
    # A number where an id belongs (a phone number sent as one), or out of any range.
    return WITHHELD
