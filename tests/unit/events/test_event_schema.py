from __future__ import annotations

import pyarrow as pa

from pipeline.events.schema import canonical_arrow_schema, load_schema


def test_arrow_schema_follows_the_json_schema() -> None:
    json_schema = load_schema("canonical_event")
    arrow = canonical_arrow_schema()
    assert arrow.names == list(json_schema["properties"])
    for name in json_schema["required"]:
        assert not arrow.field(name).nullable
    assert arrow.field("page_url").nullable
    assert arrow.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("value").type == pa.float64()
    assert arrow.field("engagement_time_ms").type == pa.int64()
