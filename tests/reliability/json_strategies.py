"""Hypothesis strategies for hostile JSON, shared by the fuzz targets that read JSON
(canonical validation, the collector's dialects): hostile scalars and nested values, a
structure-aware mutation of a valid object (drop, duplicate, retype or add keys) and
byte-level mutations of its encoding (truncate, flip, splice, bad UTF-8)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Site ids that look like shop.example and are not: Cyrillic o and e, Greek omicron, a
# full-width dot, a zero-width space, a small roman numeral l, Cyrillic dze, upper case.
CONFUSABLE_SITES = [
    "sh\u043ep.example", "shop.\u0435xample", "sh\u03bfp.example", "shop\uff0eexample",
    "shop.example\u200b", "\u200bshop.example", "shop.examp\u217ce", "SHOP.EXAMPLE",
    "xn--shp-5cd.example", "shop.example.", "www.shop.example", "shop.example:443",
    "\u0455hop.example", "sh\u00f6p.example", "shop\u2024example",
]  # fmt: skip
SQL_LIKE = [
    "shop.example' OR 1=1 --", "'; DROP TABLE events; --", "\" OR \"\"=\"",
    "1; SELECT * FROM read_csv('/etc/passwd')", "x'); COPY events TO '/tmp/x'; --",
    "ATTACH '/tmp/evil.db'", "${jndi:ldap://x}", "{{7*7}}", "%s%s%n", "<script>x</script>",
]  # fmt: skip
HOSTILE_STRINGS = [
    "", " ", "\t", "\x00", "a\x00b", "\ud800", "\udfff", "x\udc80y", "\ufeff", "\u202etxt",
    "\r\n", "\n", "../../etc/passwd", "/etc/passwd", "NaN", "Infinity", "-0", "1e400",
    "\U0001f600", "\u0000\u0001\u001f", "null", "true", "[]", "{}", "x" * 65, "x" * 129,
    "x" * 257, "y" * 2049, "z" * 5000, "9" * 20, "9" * 5000, "\u00b2", "\u0661\u0662", "\uff11",
    "2026-11-01T10:00:00Z", "2026-02-30T00:00:00Z",
    "9999-12-31T23:59:59Z", "1970-01-01T00:00:00+99:00", "USD", "usd", "ZZ", "purchase",
    "page_view", "https://shop.example/", "javascript:alert(1)", "http://[::1", *CONFUSABLE_SITES,
    *SQL_LIKE,
]  # fmt: skip
HOSTILE_NUMBERS: list[int | float] = [
    0, -1, 1, 2**31, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1,
    2**64, 10**30, 10**300, 1e308, -1e308, 5e-324, -0.0, 0.5, float("nan"), float("inf"),
    float("-inf"),
]  # fmt: skip

hostile_text = st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=12))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(HOSTILE_NUMBERS),
    hostile_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)


def dumps(value: object, ensure_ascii: bool = True) -> bytes:
    """JSON as a JavaScript client might write it: NaN and Infinity as bare words, and a
    lone surrogate either escaped (ensure_ascii) or as raw (invalid) UTF-8 bytes."""
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@st.composite
def mutated_object(
    draw: st.DrawFn, base: dict[str, Any], keys: list[str], most: int = 3
) -> dict[str, Any]:
    """`base` with 1..`most` keys set to hostile values, retyped, dropped or added."""
    value = dict(base)
    for _ in range(draw(st.integers(1, most))):
        # "add" (an unknown key) rejects before any other rule: drawn less often.
        action = draw(st.sampled_from(["set", "set", "retype", "delete", "null", "add"]))
        name = draw(st.sampled_from(keys))
        if action == "set":
            value[name] = draw(json_values)
        elif action == "retype" and name in value:
            old = value[name]
            value[name] = draw(
                st.sampled_from([[old], {"v": old}, str(old), 1 if old else 0, True, 1.5])
            )
        elif action == "delete":
            value.pop(name, None)
        elif action == "null":
            value[name] = None
        else:
            value[draw(hostile_text)] = draw(json_values)
    return value


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """The bytes of a JSON document, damaged: truncated, a byte flipped or replaced by
    one that is not UTF-8, a slice dropped or repeated, a key given twice, a BOM or
    other encoding, trailing garbage."""
    action = draw(
        st.sampled_from(
            ["truncate", "flip", "bad utf-8", "drop", "repeat", "duplicate key", "bom",
             "utf-16", "trailing", "wrap", "nul"]
        )
    )  # fmt: skip
    size = len(data)
    at = draw(st.integers(0, max(size - 1, 0)))
    if action == "truncate":
        return data[:at]
    if action == "flip" and size:
        return data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
    if action == "bad utf-8":
        bad = draw(
            st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"])
        )
        return data[:at] + bad + data[at:]
    if action == "drop":
        return data[:at] + data[at + draw(st.integers(1, 8)) :]
    if action == "repeat":
        return data[:at] + data[at : at + 8] + data[at:]
    if action == "duplicate key" and data.endswith(b"}"):
        key = draw(st.sampled_from([b"event_id", b"name", b"events", b"client_id", b"site_id"]))
        return data[:-1] + b', "' + key + b'": ' + dumps(draw(scalars)) + b"}"
    if action == "bom":
        return b"\xef\xbb\xbf" + data
    if action == "utf-16":
        return data.decode("utf-8", "replace").encode("utf-16")
    if action == "trailing":
        return data + draw(st.sampled_from([b"x", b",", b"}", b"\x00", b" {}", b"\n{}"]))
    if action == "wrap":
        return b"[" + data + b"]"
    return data.replace(b'"', b"\x00", 1)
