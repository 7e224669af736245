"""A consumer partition's durable state: its snapshot and its in-flight cycle manifest.

The snapshot is one JSON document, written atomically:

    {"format": "sessionflow.partition-state", "version": 2, "next_offset": N,
     "cycles": C, "dedup": {...}, "sessionizer": {...}}

with the deduplicator's and the sessionizer's own versioned state inside (see their
`to_json`). No pickled classes: code can move without breaking a restore. A version 1
snapshot (`state.pickle`, written before this format) is still read, once: the next save
writes version 2 and removes it.

It lives in the consumer state directory (shared storage when consumers run on several
machines).
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.lake.files import write_bytes_atomically
from pipeline.lake.processing import ProcessingState
from pipeline.lake.store import remove_files
from pipeline.sessions.dedup import Deduplicator
from pipeline.sessions.sessionizer import OpenSession, Sessionizer, SessionRules

FORMAT = "sessionflow.partition-state"
VERSION = 2


@dataclass
class PartitionState(ProcessingState):
    next_offset: int = 0
    # Cycles finished. Names the next cycle's files with next_offset: a cycle that only
    # releases held events reads no record, so the offset alone would name two cycles'
    # files alike and the second would overwrite the first. (Absent before: 0.)
    cycles: int = 0


class PartitionStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.snapshot_path = directory / "state.json"
        self.legacy_snapshot_path = directory / "state.pickle"  # version 1
        self.manifest_path = directory / "inflight.json"

    def load(self) -> PartitionState | None:
        try:
            document = json.loads(self.snapshot_path.read_bytes())
        except FileNotFoundError:
            return _read_version_1(self.legacy_snapshot_path)
        if document.get("format") != FORMAT or document.get("version") != VERSION:
            raise ValueError(
                f"{self.snapshot_path}: not a version {VERSION} {FORMAT} snapshot "
                f"(version {document.get('version')!r})"
            )
        return PartitionState(
            dedup=Deduplicator.from_json(document["dedup"]),
            sessionizer=Sessionizer.from_json(document["sessionizer"]),
            next_offset=document["next_offset"],
            cycles=document.get("cycles", 0),
        )

    def save(self, state: PartitionState) -> None:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "next_offset": state.next_offset,
            "cycles": state.cycles,
            "dedup": state.dedup.to_json(),
            "sessionizer": state.sessionizer.to_json(),
        }
        write_bytes_atomically(self.snapshot_path, json.dumps(document).encode())
        self.legacy_snapshot_path.unlink(missing_ok=True)

    def begin_cycle(self, state: PartitionState, files: list[Path]) -> None:
        manifest = {
            "first_offset": state.next_offset,
            "cycle": state.cycles,
            "files": [str(path) for path in files],
        }
        write_bytes_atomically(self.manifest_path, json.dumps(manifest).encode())

    def end_cycle(self) -> None:
        self.manifest_path.unlink(missing_ok=True)

    def undo_unfinished_cycle(self, state: PartitionState) -> int:
        """Delete the files of a cycle that crashed before its snapshot; returns how many.
        Unfinished: the snapshot still stands where the cycle began (its offset and its
        cycle count; a manifest from before the count was kept has only the offset)."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return 0
        files = [Path(path) for path in manifest["files"]]
        unfinished = manifest["first_offset"] == state.next_offset and (
            manifest.get("cycle", state.cycles) == state.cycles
        )
        if unfinished:
            remove_files(files)
        self.end_cycle()
        return len(files) if unfinished else 0


# -- version 1: pickled tuples and classes, from before pipeline/ had rooms ------------------

# The only classes a version 1 snapshot holds, by the module path they were pickled under.
_V1_CLASSES = {
    ("pipeline.sessionizer", "SessionRules"): SessionRules,
    ("pipeline.sessionizer", "_OpenSession"): OpenSession,
}


# What pyarrow's own pickling of the pending events' table calls on the way back.
_V1_ARROW = frozenset(
    {"_reconstruct_table", "_restore_array", "chunked_array", "py_buffer", "schema", "field",
     "type_for_alias", "timestamp", "decimal128", "list_", "struct"}
)  # fmt: skip


class _Version1Unpickler(pickle.Unpickler):
    """Restores exactly what version 1 wrote, and nothing else a pickle could name."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _V1_CLASSES:
            return _V1_CLASSES[(module, name)]
        if module == "pyarrow.lib" and name in _V1_ARROW:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"version 1 snapshot: unexpected class {module}.{name}")


def _unpickle(data: bytes) -> Any:
    return _Version1Unpickler(io.BytesIO(data)).load()


def _read_version_1(path: Path) -> PartitionState | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    version, next_offset, dedup_bytes, sessionizer_bytes = _unpickle(data)
    if version != 1:
        raise ValueError(f"{path}: snapshot version {version} unsupported")
    _, window, seen, newest, duplicates = _unpickle(dedup_bytes)
    _, rules, pending, open_sessions, max_ts, released_below, late = _unpickle(sessionizer_bytes)
    # Version 1 kept event ids without their site.
    dedup = Deduplicator.from_parts(window, {}, newest, duplicates, unsited=seen)
    sessionizer = Sessionizer.from_parts(
        rules, pending, open_sessions, max_ts=max_ts, released_below=released_below,
        late_events=late,
    )  # fmt: skip
    return PartitionState(dedup=dedup, sessionizer=sessionizer, next_offset=next_offset)
