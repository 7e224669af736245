"""`sessionflow query` reads the marts and nothing else: every way out of them (files,
ATTACH, extensions, settings, writes, several statements) is one line of refusal, and
nothing is written anywhere."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import SessionflowError
from pipeline.warehouse.query import run_query
from tests.reliability.support import assert_one_line, cli_env, tree


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path/data/marts with one mart, a secret next to it, and cwd in tmp_path/cwd."""
    marts = tmp_path / "data" / "marts"
    day = marts / "daily_site_summary" / "date=2026-11-01" / "data.parquet"
    day.parent.mkdir(parents=True)
    pq.write_table(pa.table({"site_id": ["shop.example"], "sessions": [7]}), day)
    pq.write_table(pa.table({"secret": ["s3cret"]}), tmp_path / "data" / "secret.parquet")
    (tmp_path / "data" / "secret.csv").write_text("secret\ns3cret\n")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return marts


def hostile(marts: Path) -> list[str]:
    data, out = marts.parent, marts.parent.parent / "out"
    return [
        f"COPY (SELECT 1) TO '{out}.csv'",
        f"COPY daily_site_summary TO '{marts}/copy.parquet'",
        "COPY (SELECT 1) TO 'relative.csv'",
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{marts}/explained.csv'",
        f"EXPLAIN /* c */ ANALYSE COPY (SELECT 1) TO '{out}-explained.csv'",
        f"EXPORT DATABASE '{out}-db'",
        f"ATTACH '{out}.duckdb' AS other",
        "ATTACH ':memory:' AS other",
        "DETACH memory",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd', sep = ':')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT content FROM read_text('/etc/passwd')",
        "SELECT content FROM read_blob('/etc/hostname')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM read_json('/etc/hostname')",
        f"SELECT * FROM read_parquet('{data}/secret.parquet')",
        f"SELECT * FROM read_parquet('{marts}/../secret.parquet')",
        f"SELECT * FROM read_parquet('{marts}/daily_site_summary/../../secret.parquet')",
        f"SELECT * FROM read_parquet('{marts}/./../secret.parquet')",
        f"SELECT * FROM read_parquet('{marts}//../secret.parquet')",
        f"SELECT * FROM read_parquet('file://{marts}/../secret.parquet')",
        f"SELECT * FROM read_parquet(['{marts}/daily_site_summary/date=2026-11-01/data.parquet', '{data}/secret.parquet'])",
        f"SELECT * FROM read_csv('{marts}/../secret.csv')",
        f"SELECT * FROM read_parquet('{marts}_evil/x.parquet')",
        "SELECT * FROM read_parquet('../data/secret.parquet')",
        "SELECT * FROM read_parquet('https://example.com/x.parquet')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "FORCE INSTALL httpfs FROM 'http://127.0.0.1:9/'",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET enable_external_access",
        "SET allowed_directories = ['/']",
        "SET temp_directory = '/tmp'",
        "PRAGMA enable_profiling",
        f"PRAGMA profiling_output = '{out}.json'",
        "PRAGMA threads = 1",
        "CALL pragma_version()",
        "SELECT 1; SELECT 2",
        "SELECT 1; COPY (SELECT 1) TO 'x.csv'",
        "SELECT * FROM daily_site_summary; DROP VIEW daily_site_summary",
        "CREATE TABLE x AS SELECT 1",
        "CREATE MACRO m() AS 1",
        "CREATE SECRET (TYPE s3, KEY_ID 'a', SECRET 'b')",
        "INSERT INTO daily_site_summary VALUES ('x', 1, DATE '2026-11-01')",
        "DROP VIEW daily_site_summary",
        "CHECKPOINT",
        "VACUUM",
        "BEGIN TRANSACTION",
        "USE memory",
        "SELECT * FROM query('COPY (SELECT 1) TO ''query.csv''')",
        "SELECT 1 /* unterminated",
        "",
        "   ;  ",
        "SELECT '\ud800'",
        "SELECT " + "(" * 10_000 + "1" + ")" * 10_000,
    ]


def test_every_way_out_is_one_line_of_refusal_and_nothing_is_written(sandbox: Path) -> None:
    root = sandbox.parent.parent
    before = tree(root)
    refused: list[str] = []
    for sql in hostile(sandbox):
        with pytest.raises(SessionflowError) as caught:
            run_query(sandbox, sql)
        assert_one_line(caught.value)
        assert "s3cret" not in str(caught.value)
        refused.append(str(caught.value))
    assert tree(root) == before  # cwd, the marts, the data dir and the tmp dir alike
    assert not list(Path("/tmp").glob(f"{root.name}*")), "a file named after the test dir"
    # Reads outside the marts are refused by DuckDB itself, and say so.
    passwd = refused[hostile(sandbox).index("SELECT * FROM read_csv('/etc/passwd')")]
    assert passwd.startswith("query refused: only the marts under"), passwd

    # And the marts still read, through their views and directly.
    assert run_query(sandbox, "SELECT site_id, sessions, date FROM daily_site_summary").rows == [
        ("shop.example", 7, date(2026, 11, 1))
    ]
    direct = f"SELECT count(*) FROM read_parquet('{sandbox}/daily_site_summary/*/*.parquet')"
    assert run_query(sandbox, direct).rows == [(1,)]
    assert run_query(sandbox, "EXPLAIN ANALYZE SELECT * FROM daily_site_summary").rows
    assert run_query(sandbox, "SELECT current_setting('enable_external_access')").rows == [(False,)]
    # A PRAGMA DuckDB rewrites to a read (a table function) is a read, and harmless.
    assert run_query(sandbox, "PRAGMA version").rows
    assert tree(root) == before


def test_a_relative_data_dir_and_one_with_a_quote_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marts = tmp_path / "bob's data" / "marts"
    day = marts / "daily_sessions" / "date=2026-11-01" / "data.parquet"
    day.parent.mkdir(parents=True)
    pq.write_table(pa.table({"sessions": [3]}), day)
    monkeypatch.chdir(tmp_path)
    assert run_query(Path("bob's data/marts"), "SELECT sessions FROM daily_sessions").rows == [(3,)]
    with pytest.raises(SessionflowError, match="query refused"):
        run_query(Path("bob's data/marts"), "SELECT * FROM read_text('../../etc/passwd')")


def test_the_cli_refuses_with_exit_1_and_one_line(tmp_path: Path) -> None:
    """README, "The command line": a refused query is an error said in one line, exit 1."""
    data = tmp_path / "data"
    (data / "marts").mkdir(parents=True)
    env = cli_env(SESSIONFLOW_DATA_DIR=str(data))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = tree(tmp_path)
    queries = ("SELECT * FROM read_csv('/etc/passwd')", f"COPY (SELECT 1) TO '{tmp_path}/out.csv'")
    running = [_start_in(cwd, env, "query", sql) for sql in queries]  # at once: each ~2 s
    for process in running:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, (out, err)
        assert out == ""
        assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
        assert "Traceback" not in err
    assert tree(tmp_path) == before


def _start_in(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """tests.conftest.run_cli, started, in a working directory of the test's own."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
