"""`sessionflow query` has bounds: a time limit, a memory limit, a row limit for the
table, and csv/json written as DuckDB yields rows (a large result never sits in Python).
Each through the real CLI, in a process of its own, on real Parquet marts."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.reliability.support import cli_env

ROWS = 1_000_000
# Peak RSS of the query process while it writes ROWS rows as csv or json. Reading all the
# rows into Python first (as before) peaked at about 600 MB for 1M rows (1.1 GB for 2M);
# streamed, it stays near the interpreter's own size plus one chunk.
MAX_RSS_MB = 300


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits") / "data"
    day = root / "marts" / "sessions" / "date=2026-11-01" / "data.parquet"
    day.parent.mkdir(parents=True)
    ids = pa.array([f"session-{i:012d}-abcdefghijklmnop" for i in range(ROWS)])
    table = pa.table(
        {
            "session_id": ids,
            "site_id": pa.array(["shop.example"] * ROWS),
            "pageviews": pa.array(range(ROWS), pa.int64()),
            "revenue": pa.array([1.5] * ROWS),
        }
    )
    pq.write_table(table, day)
    return root


def query(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "query", *args],
        env=cli_env(SESSIONFLOW_DATA_DIR=str(data_dir)),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_a_query_that_runs_forever_stops_at_its_time_limit(data_dir: Path) -> None:
    started = time.monotonic()
    result = query(data_dir, "--timeout", "2", "SELECT count(*) FROM range(1000000000000)")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.strip() == "Error: query stopped after its time limit of 2 s (--timeout)"
    assert elapsed < 60, elapsed  # without the limit it runs for hours


def test_a_query_that_needs_more_memory_than_its_limit_fails_on_one_line(data_dir: Path) -> None:
    result = query(
        data_dir,
        "--memory-limit", "20MB",
        "SELECT session_id, count(*) FROM sessions GROUP BY ALL ORDER BY 1 DESC LIMIT 1",
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "memory limit of 20MB (--memory-limit)" in result.stderr


def test_without_memory_limit_a_query_takes_the_warehouse_setting(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "query",
         "SELECT session_id, count(*) FROM sessions GROUP BY ALL ORDER BY 1 DESC LIMIT 1"],
        env=cli_env(SESSIONFLOW_DATA_DIR=str(data_dir), SESSIONFLOW_WAREHOUSE__MEMORY_LIMIT="20MB"),
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "memory limit of 20MB ([warehouse] memory_limit)" in result.stderr


def test_the_table_shows_at_most_max_rows_and_says_how_many_it_left_out(data_dir: Path) -> None:
    result = query(data_dir, "SELECT pageviews FROM sessions WHERE pageviews < 25000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 10_000 + 1  # header, rule, the default --max-rows, the count
    assert lines[-1] == "(10000 of 25000 rows shown: --max-rows, or --format csv for all)"
    few = query(data_dir, "--max-rows", "3", "SELECT pageviews FROM sessions LIMIT 5")
    assert few.stdout.splitlines()[-1].startswith("(3 of 5 rows shown")


def peak_rss_mb(data_dir: Path, output: str) -> tuple[float, int]:
    """The query process's peak RSS (GNU time's "Maximum resident set size") and the lines
    it wrote, for every row of the sessions mart in `output` format."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-m", "pipeline.cli", "query",
         "--format", output, "SELECT * FROM sessions"],
        env=cli_env(SESSIONFLOW_DATA_DIR=str(data_dir)),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    assert peak, result.stderr[-2000:]
    return int(peak.group(1)) / 1024, result.stdout.count("\n")


@pytest.mark.parametrize("output", ["csv", "json"])
def test_csv_and_json_stream_with_bounded_memory(data_dir: Path, output: str) -> None:
    peak, lines = peak_rss_mb(data_dir, output)
    assert lines == ROWS + (1 if output == "csv" else 2)  # every row, plus header or [ ]
    assert peak < MAX_RSS_MB, f"{output}: peak RSS {peak:.0f} MB for {ROWS} rows"


def test_a_reader_that_goes_away_stops_the_query_quietly(data_dir: Path) -> None:
    """`query --format csv ... | head -1`: the query stops when the pipe closes, exit 0,
    nothing on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "query", "--format", "csv", "SELECT * FROM sessions"],
        env=cli_env(SESSIONFLOW_DATA_DIR=str(data_dir)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("session_id,")
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == ""
