"""JSON bodies and lines -> Python values, or a `bad_json` rejection."""

from __future__ import annotations

import json

from pipeline.events.reasons import Reason, Rejected


def decode_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"body is not valid JSON ({exc.__class__.__name__})"
        raise Rejected(Reason.BAD_JSON, reason) from None
    except ValueError:
        # Python refuses integers of more than 4300 digits (CVE-2020-10735).
        raise Rejected(Reason.BAD_JSON, "body holds a number too long to read") from None
    except RecursionError:
        # Thousands of nested brackets: a poison message, not a reason to crash a reader.
        raise Rejected(Reason.BAD_JSON, "body nests JSON too deeply") from None
