"""pipeline/progress.py's parts that need no terminal: the line count a total comes from,
and the interval setting. The displays are tested through the CLI (tests/integration)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.progress import lines_in, plain_interval


@pytest.mark.parametrize(
    "data",
    [b"", b"\n", b"a", b"a\n", b"a\nb", b"a\n\nb\n", b"a\r\nb\r\n", b"x" * (1 << 20) + b"\ny"],
    ids=["empty", "newline", "no-newline", "one", "last-unended", "blank", "crlf", "1MB+"],
)
def test_lines_in_counts_what_readline_reads(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    assert lines_in(path) == sum(1 for _ in io.BytesIO(data))


def test_lines_in_does_not_read_what_is_not_a_regular_file(tmp_path: Path) -> None:
    assert lines_in(tmp_path) is None
    assert lines_in(tmp_path / "missing.jsonl") is None


def test_the_interval_setting_is_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONFLOW_PROGRESS_INTERVAL", "0.5")
    assert plain_interval() == 0.5
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv("SESSIONFLOW_PROGRESS_INTERVAL", bad)
        with pytest.raises(ConfigError, match="SESSIONFLOW_PROGRESS_INTERVAL must be"):
            plain_interval()
