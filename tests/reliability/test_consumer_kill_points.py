"""A consumer SIGKILLed at the exact points of its cycle where a crash is most costly,
through the fault hook (pipeline.faults), not by timing: after the lake files are written
but before the snapshot, and after the snapshot but before the offset commit. One stream
takes the three kills in turn, each restart recovering from the one before; finished, it
holds every event once, in the sessions an uninterrupted import gives."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from pipeline.config import FAULT_ENV, Settings
from tests.integration.test_consumer import cli, cli_env, generated, lake_sessions

FAULTS = ("after_lake_write:2", "after_snapshot:1", "after_snapshot:3")


def test_killed_between_write_snapshot_and_commit_loses_and_doubles_nothing(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    events_file = generated(tmp_path, events_per_day=6_000)
    streaming = cli_env(
        kafka_settings, tmp_path / "streamed",
        SESSIONFLOW_CONSUMER__CYCLE_MAX_EVENTS="500",
    )  # fmt: skip
    produced = cli(streaming, "produce", "--file", str(events_file))
    assert produced.returncode == 0, produced.stderr

    for fault in FAULTS:  # each run first undoes what the kill before it left unfinished
        killed = cli({**streaming, FAULT_ENV: fault}, "consume", "--until-caught-up")
        assert killed.returncode == -signal.SIGKILL, (fault, killed.stdout + killed.stderr)
    finished = cli(streaming, "consume", "--until-caught-up")
    assert finished.returncode == 0, finished.stdout + finished.stderr

    reference = cli_env(kafka_settings, tmp_path / "batch")
    imported = cli(reference, "import", str(events_file))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    streamed = lake_sessions(tmp_path / "streamed")  # asserts no event twice
    unique_ids = {json.loads(line)["event_id"] for line in events_file.open()}
    assert set(streamed) == unique_ids
    assert streamed == lake_sessions(tmp_path / "batch")
    print(
        f"kill points: {len(FAULTS)} SIGKILLs ({', '.join(FAULTS)}), "
        f"{len(unique_ids)} distinct events, {len(streamed)} landed, "
        f"lost {len(unique_ids - set(streamed))}, doubled 0"
    )
