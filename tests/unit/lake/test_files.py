"""Durable writes on a failing disk: nothing half-written stays, several files change
together or not at all, and the error is one line naming the file."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from pipeline.config import FAULT_ENV
from pipeline.lake.files import disk_error, write_all_atomically, write_bytes_atomically


def test_a_failed_write_leaves_no_staging_file_and_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "day" / "data.bin"
    write_bytes_atomically(target, b"old")

    def half_then_full(staging: Path) -> None:
        staging.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28]")

    with pytest.raises(OSError) as raised:
        write_all_atomically([(target, half_then_full)])
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(target)  # the file, not its staging name
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]
    assert target.read_bytes() == b"old"


def test_several_files_change_together_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a" / "data.bin", tmp_path / "b" / "data.bin"
    for path in (first, second):
        write_bytes_atomically(path, b"old")
    # Room for the first new file, not for the second (the tests' fault layer).
    monkeypatch.setenv(FAULT_ENV, f"disk:ENOSPC:{len(b'oldold') + 3}:{tmp_path}")
    with pytest.raises(OSError) as raised:
        write_all_atomically(
            [(first, lambda s: s.write_bytes(b"new")), (second, lambda s: s.write_bytes(b"new"))]
        )
    assert (first.read_bytes(), second.read_bytes()) == (b"old", b"old")
    assert not list(tmp_path.rglob(".*.tmp"))
    line = str(disk_error("the marts", raised.value, "nothing changed"))
    assert line == f"cannot write the marts ({second}): No space left on device [ENOSPC]; " + (
        "nothing changed"
    )

    monkeypatch.delenv(FAULT_ENV)
    write_all_atomically(
        [(first, lambda s: s.write_bytes(b"new")), (second, lambda s: s.write_bytes(b"new"))]
    )
    assert (first.read_bytes(), second.read_bytes()) == (b"new", b"new")
