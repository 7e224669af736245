"""`sessionflow import`: the batch path into the lake (no broker needed)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.config import Settings, load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.events.timestamps import parse_event_ts
from pipeline.lake.importer import import_file
from pipeline.lake.store import events_to_table


def settings_for(tmp_path: Path) -> Settings:
    return load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path / "data")})


def lake_rows(settings: Settings) -> list[tuple[str, str]]:
    pattern = str(settings.lake_dir / "events" / "event_date=*" / "*.parquet")
    return duckdb.execute(
        "SELECT event_id, session_id FROM read_parquet(?) ORDER BY event_id", [pattern]
    ).fetchall()


def test_import_lists_bad_lines_lands_the_rest_and_adds_nothing_the_second_time(
    tmp_path: Path,
) -> None:
    generated = write_dataset(
        GeneratorConfig(days=1, start=date(2026, 11, 1), events_per_day=800), tmp_path / "gen"
    )
    lines = generated.events_path.read_text().splitlines()
    lines.reverse()  # any line order
    lines.insert(3, "{broken")
    lines.insert(7, json.dumps({"event_id": "x", "event_name": "page_view"}))
    source = tmp_path / "history.jsonl"
    source.write_text("\n".join(lines) + "\n")
    settings = settings_for(tmp_path)
    progress: list[int] = []

    first = import_file(settings, source, progress.append)

    distinct = len({json.loads(line)["event_id"] for line in generated.events_path.open()})
    assert first.rejected == 2
    assert first.reject_lines == [
        "line 4: bad_json: body is not valid JSON (JSONDecodeError)",
        "line 8: missing_field: event_ts is required",
    ]
    assert first.accepted == distinct
    assert first.duplicates_in_file == generated.duplicates
    assert sum(progress) == len(lines)  # every line read, the bad ones too
    landed = lake_rows(settings)
    assert len(landed) == distinct

    second = import_file(settings, source, progress.append)
    assert (second.accepted, second.already_in_lake) == (0, distinct)
    assert lake_rows(settings) == landed
    rejected = duckdb.execute(
        "SELECT source, reason FROM read_parquet(?) ORDER BY source",
        [str(settings.lake_dir / "rejected" / "*" / "*.parquet")],
    ).fetchall()
    assert rejected == [("line 4", "bad_json"), ("line 8", "missing_field")]


def test_parquet_input_gives_the_same_sessions_as_json_lines(tmp_path: Path) -> None:
    generated = write_dataset(
        GeneratorConfig(days=1, start=date(2026, 11, 2), events_per_day=500), tmp_path / "gen"
    )
    events = [json.loads(line) for line in generated.events_path.open()]
    as_table = events_to_table(
        [{**event, "event_ts": parse_event_ts(event["event_ts"])} for event in events]
    )
    parquet_path = tmp_path / "history.parquet"
    pq.write_table(as_table, parquet_path)

    from_parquet = settings_for(tmp_path / "a")
    from_json = settings_for(tmp_path / "b")
    assert import_file(from_parquet, parquet_path, lambda _: None).rejected == 0
    assert import_file(from_json, generated.events_path, lambda _: None).rejected == 0
    assert lake_rows(from_parquet) == lake_rows(from_json)
