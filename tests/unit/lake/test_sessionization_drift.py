"""Sessionization settings apply at ingestion; lake files record them, and `status` says
when the current settings differ, once, with the re-import that would apply them."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import load_settings
from pipeline.lake.importer import import_file
from pipeline.lake.paths import LakeLayout
from pipeline.lake.store import sessionization_drift
from pipeline.sessions.sessionizer import SessionRules
from tests.conftest import clean_env, run_cli


def test_status_reports_settings_that_differ_from_the_lakes(tmp_path: Path) -> None:
    env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data"),
        SESSIONFLOW_SESSIONIZATION__TIMEOUT_MINUTES="45",
    )
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"event_id": "a", "event_name": "page_view",
                                  "event_ts": "2026-11-01T10:00:00Z", "site_id": "s",
                                  "visitor_id": "v"}) + "\n")  # fmt: skip
    import_file(load_settings(environ=env), events, lambda _: None)
    layout = LakeLayout(tmp_path / "data" / "lake")

    written_with = SessionRules.from_settings(load_settings(environ=env))
    assert sessionization_drift(layout, written_with) is None
    default_env = {k: v for k, v in env.items() if "TIMEOUT" not in k}
    same = run_cli(env, "status")
    changed = run_cli(default_env, "status")

    assert same.returncode == 0 and changed.returncode == 0, changed.stderr
    assert "sessionization settings differ" not in same.stdout
    drift = [line for line in changed.stdout.splitlines() if "sessionization" in line]
    assert len(drift) == 1
    assert drift[0].startswith(
        "sessionization settings differ from those the lake was written with (timeout_micros)"
    )
    assert "import the raw events again into a new data_dir" in drift[0]
