"""One processing path: the streaming consumer and `import` turn the same raw records
into the same lake rows and the same rejections, because both run
pipeline.lake.processing. Hostile records included: bad UTF-8, deep nesting, huge
strings, non-objects, unknown fields, duplicates, out-of-order arrival."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from kafka import KafkaProducer

import pipeline.lake.consumer
import pipeline.lake.importer
from pipeline.config import Settings, load_settings
from pipeline.kafka.topics import ensure_topics
from pipeline.lake import processing
from pipeline.lake.consumer import LakeConsumer
from pipeline.lake.importer import import_file
from pipeline.lake.paths import LakeLayout


def page_view(event_id: str, ts: str, visitor: str, **fields: Any) -> bytes:
    event = {"event_id": event_id, "event_name": "page_view", "event_ts": ts,
             "site_id": "shop.example", "visitor_id": visitor, **fields}  # fmt: skip
    return json.dumps(event).encode()


RECORDS = [
    page_view("b", "2026-11-01T10:05:00Z", "v1", page_url="https://shop.example/b"),
    page_view(
        "a",
        "2026-11-01T10:00:00Z",
        "v1",
        page_url="https://shop.example/a",
        utm_source="google",
        utm_medium="cpc",
        utm_campaign="may",
    ),
    page_view("c", "2026-11-01T11:30:00Z", "v1", page_referrer="https://www.bing.com/"),
    page_view("a", "2026-11-01T10:00:00Z", "v1"),  # a duplicate: first arrival wins
    page_view("d", "2026-11-01T23:59:59Z", "v2", session_id="S1"),
    page_view("e", "2026-11-02T00:00:30Z", "v2", session_id="S1", value=3.5, currency="EUR"),
    b"\xff\xfe not utf-8 {",
    b"[1, 2, 3]",
    b"{not json",
    ("[" * 5000 + "]" * 5000).encode(),  # deep nesting
    page_view("huge", "2026-11-01T10:00:00Z", "v3", page_url="https://x/" + "a" * 100_000),
    page_view("f", "2026-11-01T10:00:00Z", "v3", shoe_size=44),  # unknown field
    b'{"event_id": "big", "value": ' + b"9" * 5000 + b"}",  # beyond Python's int limit
    page_view("surrogate\ud800", "2026-11-01T10:00:00Z", "v3"),  # a lone surrogate
    b'{"\\udc00": 1}',  # ... as an unknown key
]
# What each hostile record is rejected for, in both paths alike.
REASONS = sorted(
    ["bad_json", "not_an_object", "bad_json", "bad_json", "too_long", "unknown_field",
     "bad_json", "bad_text", "unknown_field"]
)  # fmt: skip


def lake_rows(data_dir: Path) -> list[dict[str, Any]]:
    files = LakeLayout(data_dir / "lake").event_files()
    table = pa.concat_tables(pq.read_table(path) for path in files).drop_columns(["ingested_at"])
    return sorted(table.to_pylist(), key=lambda row: row["event_id"])


def rejected_reasons(data_dir: Path) -> list[str]:
    files = sorted((data_dir / "lake" / "rejected").rglob("*.parquet"))
    return sorted(r for path in files for r in pq.read_table(path)["reason"].to_pylist())


def test_both_callers_use_the_one_processing_path() -> None:
    for caller in (pipeline.lake.consumer, pipeline.lake.importer):
        assert vars(caller)["process"] is processing.process
    # The consumer's batches take accept_json for every record the bulk path leaves.
    assert vars(pipeline.lake.consumer)["accept_json_batch"] is processing.accept_json_batch
    assert vars(pipeline.lake.importer)["accept_json"] is processing.accept_json


def test_streamed_and_imported_records_give_the_same_rows_and_rejections(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    # Streamed: the raw bytes on the topic, consumed until caught up.
    ensure_topics(kafka_settings.kafka)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka.bootstrap)
    for record in RECORDS:  # one key: one partition, so the arrival order is the file's
        producer.send(kafka_settings.kafka.events_topic, key=b"shop.example/v1", value=record)
    producer.flush()
    producer.close()
    group = kafka_settings.consumer.model_copy(
        update={"group_id": f"{kafka_settings.kafka.events_topic}.group"}
    )
    streaming = kafka_settings.model_copy(update={"consumer": group})
    totals = LakeConsumer(streaming, instance_id="shared-path").run(until_caught_up=True)
    assert (totals.events, totals.duplicates, totals.rejected) == (len(RECORDS), 1, 9)

    # Batch: the same records as a JSON Lines file.
    imported_dir = tmp_path / "imported"
    events_file = tmp_path / "records.jsonl"
    events_file.write_bytes(b"".join(record + b"\n" for record in RECORDS))
    settings = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(imported_dir)})
    report = import_file(settings, events_file, lambda _: None)
    assert (report.accepted, report.duplicates_in_file, report.rejected) == (5, 1, 9)

    streamed = lake_rows(kafka_settings.data_dir)
    assert [row["event_id"] for row in streamed] == ["a", "b", "c", "d", "e"]
    assert streamed == lake_rows(imported_dir)
    assert rejected_reasons(kafka_settings.data_dir) == REASONS
    assert rejected_reasons(imported_dir) == REASONS
