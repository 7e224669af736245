"""The rooms of pipeline/ and which may import which (docs/architecture.md).

An event flows events -> privacy -> collector -> kafka -> sessions -> lake -> warehouse;
a room may import only the rooms it builds on. `cli`, `config` and `errors` sit at the
top; `flows/` and `dev/` may use any room.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
TOP = {"config", "errors", "daemons", "faults", "safe_text", "duckdb_connections"}
# room -> the rooms it may import (besides itself and TOP).
ALLOWED: dict[str, set[str]] = {
    "events": set(),
    "privacy": {"events"},
    "sessions": {"events", "privacy"},
    "kafka": {"events", "privacy"},  # the SDK scrubs as the collector does
    "collector": {"events", "privacy", "kafka"},
    # kafka: the consumer's clients connect with kafka/client.py's options, as every client
    "lake": {"events", "privacy", "sessions", "kafka"},
    "warehouse": {"events", "lake", "sessions"},
    "dev": {"events", "privacy", "collector", "kafka", "sessions", "lake", "warehouse"},
}
# Third-party I/O the pure core must not touch.
IO_LIBRARIES = {"kafka", "duckdb", "starlette", "uvicorn", "prefect", "maxminddb"}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (function-level imports too)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def rooms_imported(path: Path) -> set[str]:
    return {
        module.split(".")[1]
        for module in imported_modules(path)
        if module.startswith("pipeline.") and module.count(".") >= 1
    }


def room_files(room: str) -> list[Path]:
    return sorted((PIPELINE / room).rglob("*.py"))


def test_every_room_is_listed_and_nothing_else_is_loose() -> None:
    rooms = {path.name for path in PIPELINE.iterdir() if (path / "__init__.py").exists()}
    assert rooms == set(ALLOWED)
    loose = {path.stem for path in PIPELINE.glob("*.py")}
    assert loose == {
        "__init__",
        "cli",
        "config",
        "errors",
        "daemons",
        "faults",
        "safe_text",
        "progress",
        "duckdb_connections",
    }


@pytest.mark.parametrize("room", sorted(ALLOWED), ids=lambda room: f"room={room}")
def test_a_room_imports_only_the_rooms_it_builds_on(room: str) -> None:
    for path in room_files(room):
        forbidden = rooms_imported(path) - ALLOWED[room] - TOP - {room}
        assert not forbidden, f"{path.relative_to(PIPELINE)} imports pipeline.{forbidden}"


def test_the_sessionizer_room_is_pure() -> None:
    """No Kafka, no database, no server: the consumer, import and property tests share it."""
    for path in room_files("sessions"):
        used = {module.split(".")[0] for module in imported_modules(path)}
        assert not used & IO_LIBRARIES, f"{path.name} imports {used & IO_LIBRARIES}"


def test_the_rule_itself_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pipeline.lake.store import Lake\n")
    assert rooms_imported(bad) == {"lake"}
