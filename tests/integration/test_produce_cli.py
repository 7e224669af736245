"""`sessionflow generate` and `sessionflow produce --file / --synthetic` against the broker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pipeline.config import Settings
from tests.conftest import run_cli, settings_env
from tests.integration.conftest import events_of, read_topic


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(settings_env(settings), *args)


def test_produce_file_reports_bad_lines_and_produces_the_rest(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    good = {
        "event_id": "g1", "event_name": "page_view", "event_ts": "2026-01-05T10:00:00+01:00",
        "site_id": "shop.example", "visitor_id": "v1",
    }  # fmt: skip
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "event_id": "g2", "currency": "usd"}),
        "",
        json.dumps({**good, "event_id": "g3", "event_ts": 1767607200000000}),
        json.dumps({**good, "event_id": "g4", "value": "NaN"}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert cli(kafka_settings, "topics").returncode == 0
    result = cli(kafka_settings, "produce", "--file", str(path))
    assert result.returncode == 4, result.stderr
    assert "line 2: bad_json:" in result.stdout
    assert "line 3: bad_currency:" in result.stdout
    assert "line 6: wrong_type:" in result.stdout
    assert "produced 2 events; rejected 3" in result.stdout
    events = events_of(
        read_topic(kafka_settings.kafka.bootstrap, kafka_settings.kafka.events_topic, 2)
    )
    assert {e["event_id"]: e["event_ts"] for e in events} == {
        "g1": "2026-01-05T09:00:00.000000Z",
        "g3": "2026-01-05T10:00:00.000000Z",
    }


def test_generate_then_produce_the_file(kafka_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    result = cli(
        kafka_settings, "generate", "--days", "2", "--events-per-day", "300", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    written = (out / "events.jsonl").read_text().splitlines()
    assert f"wrote {len(written)} events" in result.stdout
    assert (out / "costs.csv").read_text().startswith("date,site_id,source,medium,campaign")
    assert cli(kafka_settings, "topics").returncode == 0
    produced = cli(kafka_settings, "produce", "--file", str(out / "events.jsonl"))
    assert produced.returncode == 0, produced.stdout + produced.stderr
    assert f"produced {len(written)} events; rejected 0" in produced.stdout
    assert len(
        read_topic(kafka_settings.kafka.bootstrap, kafka_settings.kafka.events_topic, len(written))
    ) == len(written)


def test_produce_synthetic(kafka_settings: Settings) -> None:
    assert cli(kafka_settings, "topics").returncode == 0
    result = cli(kafka_settings, "produce", "--synthetic", "--days", "2", "--events-per-day", "200")
    assert result.returncode == 0, result.stderr
    produced = int(result.stdout.split("produced ")[1].split(" ")[0])
    # Yesterday's whole day (about 200) and today's so far: just after midnight UTC that
    # is little more than yesterday's, so not "over 200".
    assert produced > 100
    assert (
        len(read_topic(kafka_settings.kafka.bootstrap, kafka_settings.kafka.events_topic, produced))
        == produced
    )


def test_produce_needs_exactly_one_source(kafka_settings: Settings) -> None:
    result = cli(kafka_settings, "produce")
    assert result.returncode == 2
    assert "exactly one of --synthetic or --file" in result.stderr
