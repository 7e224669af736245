"""The marketing-cost schema: the one owner of its columns and types.

A cost file's columns, a validated `CostRow`, the staged Arrow table and the warehouse
table `marketing_costs` (sql/publish/marketing_costs.sql, plus `loaded_at`) all follow
`COST_SCHEMA`; tests/unit/warehouse/test_cost_schema.py checks that the DDL, `CostRow`,
the generator and docs/tables.md agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Final

import pyarrow as pa

COST_SCHEMA: Final = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("site_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("medium", pa.string(), nullable=False),
        pa.field("campaign", pa.string()),
        pa.field("ad_group", pa.string()),
        pa.field("term", pa.string()),
        pa.field("content", pa.string()),
        pa.field("cost", pa.decimal128(18, 4), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("clicks", pa.int64()),
        pa.field("impressions", pa.int64()),
    ]
)
COLUMNS: Final = tuple(COST_SCHEMA.names)
# site_id is required only when more than one site is configured.
REQUIRED_COLUMNS: Final = ("date", "source", "medium", "cost", "currency")
OPTIONAL_TEXT: Final = ("campaign", "ad_group", "term", "content")
# One row per combination of these within a file; a second one would be ambiguous.
ROW_KEY: Final = ("date", "site_id", "source", "medium", *OPTIONAL_TEXT)
# What a load replaces: every row already stored for these values, as GA4's cost import
# does. Other campaigns of the same date, site, source and medium stay.
GROUP_KEY: Final = ("date", "site_id", "source", "medium", "campaign")


@dataclass(frozen=True, slots=True)
class CostRow:
    """One validated row, ready for the warehouse: the fields of COST_SCHEMA, in order."""

    date: date
    site_id: str
    source: str  # normalised: trimmed, lower case, as sessions are
    medium: str
    campaign: str  # normalised: pipeline.sessions.attribution.campaign_key
    ad_group: str | None
    term: str | None
    content: str | None
    cost: Decimal  # quantized to 4 decimal places
    currency: str
    clicks: int | None
    impressions: int | None


def cost_table(rows: list[CostRow]) -> pa.Table:
    return pa.Table.from_pylist(
        [{name: getattr(row, name) for name in COLUMNS} for row in rows], schema=COST_SCHEMA
    )
