"""Consumer partition snapshots: versioned JSON, and version 1 (pickled, before the
rooms) still restores, so an upgrade never loses a consumer's state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.lake.state import PartitionState, PartitionStore
from pipeline.lake.store import events_to_table

DATA = Path(__file__).parent / "data"


def mapping(table: pa.Table | None) -> dict[str, str]:
    if table is None:
        return {}
    return dict(zip(table["event_id"].to_pylist(), table["session_id"].to_pylist(), strict=True))


def continue_run(state: PartitionState, events: list[dict[str, Any]]) -> dict[str, str]:
    state.sessionizer.add(state.dedup.first_arrivals(events_to_table(events)))
    return mapping(state.sessionizer.release(final=True))


@pytest.mark.parametrize("version", ["snapshot_v1", "snapshot_v2"])
def test_a_snapshot_of_each_version_restores_and_continues_exactly(
    tmp_path: Path, version: str
) -> None:
    """The fixtures were written by the code of their version, mid-stream: some events
    released, some pending, open sessions and seen ids held."""
    expected = json.loads((DATA / "snapshot_v1" / "expected.json").read_text())
    shutil.copytree(DATA / version, tmp_path / "p000")
    store = PartitionStore(tmp_path / "p000")

    state = store.load()

    assert state is not None
    assert state.next_offset == 6
    assert continue_run(state, expected["rest"]) == expected["released_after_restore"]
    assert state.dedup.duplicates == expected["duplicates"]
    assert state.sessionizer.late_events == expected["late_events"]


def test_a_version_1_snapshot_is_rewritten_as_version_2_on_the_next_save(tmp_path: Path) -> None:
    shutil.copytree(DATA / "snapshot_v1", tmp_path / "p000")
    store = PartitionStore(tmp_path / "p000")
    state = store.load()
    assert state is not None

    store.save(state)

    assert not store.legacy_snapshot_path.exists()
    document = json.loads(store.snapshot_path.read_text())
    assert (document["format"], document["version"]) == ("sessionflow.partition-state", 2)
    again = store.load()
    assert again is not None
    assert again.sessionizer.to_json() == state.sessionizer.to_json()
    assert again.dedup.to_json() == state.dedup.to_json()


def test_a_snapshot_of_an_unknown_version_is_refused_with_its_path(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.snapshot_path.write_text(
        json.dumps({"format": "sessionflow.partition-state", "version": 9})
    )
    with pytest.raises(ValueError, match=r"state\.json: not a version 2"):
        store.load()


def test_a_version_1_snapshot_may_hold_only_the_known_classes(tmp_path: Path) -> None:
    import pickle

    evil = pickle.dumps((1, 0, pickle.dumps(print), b""))
    (tmp_path / "state.pickle").write_bytes(evil)
    with pytest.raises(pickle.UnpicklingError, match=r"unexpected class builtins\.print"):
        PartitionStore(tmp_path).load()


def test_a_cycle_is_undone_only_while_the_snapshot_stands_where_it_began(tmp_path: Path) -> None:
    """A cycle that reads no record (it releases held events) begins at the same offset
    as the one before it: its cycle count, not the offset, tells finished from not."""
    store = PartitionStore(tmp_path / "p000")
    shutil.copytree(DATA / "snapshot_v2", store.directory)
    state = store.load()
    assert state is not None and state.cycles == 0  # a snapshot from before the count
    written = tmp_path / "released.parquet"

    written.write_bytes(b"x")
    store.begin_cycle(state, [written])
    state.cycles += 1  # finished: snapshot saved, killed before the manifest went
    store.save(state)
    reloaded = store.load()
    assert reloaded is not None and reloaded.cycles == 1
    assert store.undo_unfinished_cycle(reloaded) == 0
    assert written.exists()

    store.begin_cycle(reloaded, [written])  # the next cycle, killed before its snapshot
    assert store.undo_unfinished_cycle(reloaded) == 1
    assert not written.exists()
