from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings, load_settings
from pipeline.lake.compaction import SOURCES_KEY, compact_date
from pipeline.lake.store import Lake, events_to_table, to_lake_rows
from pipeline.sessions.sessionizer import Sessionizer, SessionRules


def lake_rows(start: int, count: int) -> pa.Table:
    events = [
        {
            "event_id": f"e{start + i}",
            "event_name": "page_view",
            "event_ts": f"2026-11-01T10:{(start + i) % 60:02d}:00Z",
            "site_id": "shop.example",
            "visitor_id": f"v{(start + i) % 7}",
        }
        for i in range(count)
    ]
    sessionizer = Sessionizer(SessionRules())
    sessionizer.add(events_to_table(events))
    released = sessionizer.release(final=True)
    assert released is not None
    return to_lake_rows(released, datetime(2026, 11, 2, tzinfo=UTC))


def _settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path / "data")})


def files_of(lake: Lake) -> list[str]:
    return sorted(p.name for p in lake.layout.files_on("2026-11-01"))


def test_small_files_become_one_and_no_row_is_lost(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake", "UTC")
    for cycle in range(5):
        lake.write_events(lake_rows(cycle * 10, 10), f"t-p000-o{cycle:012d}")
    result = compact_date(_settings(tmp_path), lake, "2026-11-01")
    assert (result.sources, result.rows) == (5, 50)
    assert result.target is not None
    assert files_of(lake) == [result.target.name]
    table = pq.read_table(result.target)
    assert sorted(table["event_id"].to_pylist()) == sorted(f"e{i}" for i in range(50))
    again = compact_date(_settings(tmp_path), lake, "2026-11-01")
    assert again.target is None  # one file: nothing to do


def test_in_flight_cycle_files_are_left_to_the_consumer(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake", "UTC")
    done = lake.write_events(lake_rows(0, 10), "t-p000-o000000000000")
    lake.write_events(lake_rows(10, 10), "t-p000-o000000000010")
    in_flight = lake.write_events(lake_rows(20, 10), "t-p001-o000000000000")
    manifest = _settings(tmp_path).consumer_state_dir / "t" / "p001" / "inflight.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"first_offset": 0, "files": [str(p) for p in in_flight]}))
    result = compact_date(_settings(tmp_path), lake, "2026-11-01")
    assert result.sources == 2
    assert in_flight[0].exists() and not done[0].exists()


def test_an_interrupted_compaction_is_finished_first(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake", "UTC")
    first = lake.write_events(lake_rows(0, 10), "t-p000-o000000000000")
    second = lake.write_events(lake_rows(10, 10), "t-p000-o000000000010")
    result = compact_date(_settings(tmp_path), lake, "2026-11-01")
    assert result.target is not None
    # Simulate a crash between writing the result and deleting its sources.
    for path, start in ((first[0], 0), (second[0], 10)):
        pq.write_table(lake_rows(start, 10), path)
    assert json.loads(pq.read_schema(result.target).metadata[SOURCES_KEY]) == sorted(
        [first[0].name, second[0].name]
    )
    compact_date(_settings(tmp_path), lake, "2026-11-01")
    assert files_of(lake) == [result.target.name]
    assert pq.read_table(result.target).num_rows == 20


def test_files_from_before_a_new_column_compact_with_newer_ones(tmp_path: Path) -> None:
    """A file written before `trust` existed merges with newer files: its rows get null
    there (authenticated, by the rule for a missing trust), the others keep theirs."""
    lake = Lake(tmp_path / "lake", "UTC")
    (old,) = lake.write_events(lake_rows(0, 10), "t-p000-o000000000000")
    pq.write_table(pq.read_table(old).drop_columns(["trust"]), old)
    lake.write_events(lake_rows(10, 10), "t-p000-o000000000010")
    result = compact_date(_settings(tmp_path), lake, "2026-11-01")
    assert result.target is not None and result.rows == 20
    trust = pq.read_table(result.target)["trust"].to_pylist()
    assert (trust.count("authenticated"), trust.count(None)) == (10, 10)
