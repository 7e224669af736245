"""The Arrow schema of canonical events, derived from schemas/canonical_event.schema.json.

The JSON Schema is the one source of truth: a field added there appears in Parquet
without a second hand-kept list. `x-arrow-type` overrides the default type mapping.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

import pyarrow as pa

_JSON_TO_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}
_ARROW_OVERRIDES: dict[str, pa.DataType] = {
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
}


def schemas_dir() -> Traversable:
    """schemas/: package data `pipeline.schemas` when installed from a wheel, the top-level
    directory of the checkout when installed editable (which maps only `pipeline` itself)."""
    checkout = Path(__file__).resolve().parents[2] / "schemas"
    if checkout.is_dir():
        return checkout
    return resources.files("pipeline.schemas")


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema by file stem, e.g. ``load_schema("canonical_event")``."""
    text = schemas_dir().joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def canonical_arrow_schema() -> pa.Schema:
    schema = load_schema("canonical_event")
    required = set(schema["required"])
    return pa.schema(
        [
            pa.field(name, _arrow_type(name, spec), nullable=name not in required)
            for name, spec in schema["properties"].items()
        ]
    )


def _arrow_type(name: str, spec: dict[str, Any]) -> pa.DataType:
    if "x-arrow-type" in spec:
        return _ARROW_OVERRIDES[spec["x-arrow-type"]]
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    concrete = [t for t in types if t != "null"]
    if len(concrete) != 1 or concrete[0] not in _JSON_TO_ARROW:
        raise ValueError(f"canonical field {name!r} needs an x-arrow-type: types {types}")
    return _JSON_TO_ARROW[concrete[0]]


# Columns the lake adds to the canonical ones. The client's own session id is kept as
# client_session_id; session_id is the one the sessionizer assigns.
LAKE_EXTRA_FIELDS = (
    pa.field("client_session_id", pa.string()),
    pa.field("session_id", pa.string(), nullable=False),
    # Attribution, derived once at ingestion (pipeline.sessions.attribution).
    pa.field("source", pa.string(), nullable=False),
    pa.field("medium", pa.string(), nullable=False),
    pa.field("campaign", pa.string(), nullable=False),
    pa.field("channel_group", pa.string(), nullable=False),
    pa.field("attribution_rules", pa.int32(), nullable=False),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
)


@cache
def lake_arrow_schema() -> pa.Schema:
    canonical = canonical_arrow_schema()
    without_client_id = canonical.remove(canonical.get_field_index("session_id"))
    return pa.schema([*without_client_id, *LAKE_EXTRA_FIELDS])
