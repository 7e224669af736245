"""Hostile command lines: traversal and odd values in file arguments, dates, site ids.

Each is a one-line error (or a named rejection of the bad input) with a non-zero exit
where something was refused, never a traceback, and nothing written outside the data dir.
Two run as a user runs them, in processes of their own (the raw bytes of an invalid UTF-8
argument; a device behind a file name); the rest through click's CliRunner in this process,
which parses and fails the same way at a fraction of the cost. Each has its own data dir;
none of them gets as far as starting Prefect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.events.personal_data import strip_control_characters
from tests.reliability.support import cli_env, tree

SITE = "shop.example"
HOSTILE_SITES = [
    "../x",
    "../../../../tmp/evil",
    "shop.example' OR 1=1 --",
    'shop.example"; DROP TABLE marketing_costs; --',
    "sh\u043ep.example",  # Cyrillic o (U+043E): looks like the configured site, is not
    "shop.example\u200b",  # a zero-width space after it
    "\uff33\uff28\uff2f\uff30.example",  # fullwidth letters
]
COST_HEADER = "date,site_id,source,medium,cost,currency\n"


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    exit_code: int
    says: str  # in stderr (or stdout for reject lists)
    config: str | None = None  # TOML for --config, when the case needs one
    # As a user runs it, in a process of its own; else in process (click's CliRunner) where
    # that tests the same thing: argument parsing, or a check before any real work.
    process: bool = False


def event(event_id: str, site: str) -> str:
    stamp = datetime(2026, 11, 1, 10, 0, tzinfo=UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"event_id": event_id, "event_name": "page_view", "event_ts": stamp, "site_id": site,
         "visitor_id": "v1", "page_url": "https://shop.example/"}
    )  # fmt: skip


def cases(inputs: Path) -> list[Case]:
    inputs.mkdir()
    (inputs / "a-dir.csv").mkdir()
    (inputs / "zero.csv").symlink_to("/dev/zero")
    (inputs / "zero.jsonl").symlink_to("/dev/zero")
    (inputs / "one-long-line.csv").write_bytes(COST_HEADER.encode() + b"9" * (3 << 20))
    (inputs / "bad-utf8.jsonl").write_bytes(
        (event("ok-1", SITE) + "\n").encode()
        + b'{"event_id": "\xff\xfe", "event_name": "page_view"}\n'
        + b"\xc3\x28\xa0\xa1\n"
        + (event("ok-2", SITE) + "\n").encode()
    )
    (inputs / "bad-utf8.csv").write_bytes(
        COST_HEADER.encode() + b"2026-11-01,,g\xffoogle,cpc,1,USD\n"
    )
    (inputs / "sites.jsonl").write_text(
        "".join(event(f"site-{i}", site) + "\n" for i, site in enumerate(HOSTILE_SITES))
    )
    (inputs / "sites.csv").write_text(
        COST_HEADER
        + "".join(
            f'2026-11-01,"{site.replace(chr(34), chr(34) * 2)}",google,cpc,1,USD\n'
            for site in HOSTILE_SITES
        )
    )
    (inputs / "traversal.parquet").write_bytes(b"PAR1 not really")
    return [
        Case("date traversal", ("run", "daily", "--date", "../../etc"), 2, "Invalid value for '--date'"),
        Case("date out of range", ("run", "daily", "--date", "2026-13-45"), 2, "Invalid value for '--date'"),
        Case("date with shell", ("run", "daily", "--date", "2026-11-01; rm -rf /"), 2, "Invalid value"),
        Case("backfill reversed", ("backfill", "--start", "2026-11-30", "--end", "2026-11-01"), 2, "--end is before --start"),
        Case("backfill year 0", ("backfill", "--start", "0000-01-01", "--end", "2026-11-01"), 2, "Invalid value for '--start'"),
        Case("backfill parallel", ("backfill", "--start", "2026-11-01", "--end", "2026-11-02", "--parallel", "-1"), 2, "--parallel"),
        Case("compact traversal", ("compact", "--date", "../2026-11-01"), 2, "Invalid value for '--date'"),
        Case("costs missing", ("costs", "load", str(inputs / "missing.csv")), 1, "costs file not found"),
        Case("costs traversal", ("costs", "load", str(inputs / ".." / ".." / "etc" / "passwd")), 1, "expected a .csv or .parquet file"),
        Case("costs directory", ("costs", "load", str(inputs / "a-dir.csv")), 2, "is a directory"),
        Case("costs /dev/zero", ("costs", "load", str(inputs / "zero.csv")), 1, "not a regular file", process=True),
        Case("costs endless line", ("costs", "load", str(inputs / "one-long-line.csv")), 1, "longer than"),
        Case("costs bad utf-8", ("costs", "load", str(inputs / "bad-utf8.csv")), 1, "is not UTF-8 text"),
        Case("costs hostile sites", ("costs", "load", str(inputs / "sites.csv")), 1, f"{len(HOSTILE_SITES)} bad rows"),
        Case("import /dev/zero", ("import", str(inputs / "zero.jsonl")), 1, "not a regular file"),
        Case("import directory", ("import", str(inputs / "a-dir.csv")), 2, "is a directory"),
        Case("import missing", ("import", str(inputs / "nope.jsonl")), 2, "does not exist"),
        Case("import bad utf-8", ("import", str(inputs / "bad-utf8.jsonl")), 4, "bad_json"),
        Case("import not parquet", ("import", str(inputs / "traversal.parquet")), 1, "not a readable Parquet file"),
        Case("import hostile sites", ("import", str(inputs / "sites.jsonl")), 0, f"accepted {len(HOSTILE_SITES)}"),
        Case("config traversal", ("--config", "../../../../../../etc/passwd", "status"), 1, "is not valid TOML"),
        Case("config directory", ("--config", str(inputs), "status"), 2, "is a directory"),
        Case("config hostile site", ("--config", str(inputs / "hostile.toml"), "costs", "load", str(inputs / "missing.csv")), 1,
             "sites.[0]: not valid text", config='sites = ["shop.example\\u0000"]\n'),
        Case("query bad utf-8", ("query", "SELECT '\udcff'"), 1, "query is not valid UTF-8 text", process=True),
    ]  # fmt: skip


def test_hostile_arguments_are_one_line_errors_and_write_nothing_outside_the_data_dir(
    tmp_path: Path,
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    all_cases = cases(tmp_path / "inputs")
    for case in all_cases:
        if case.config is not None:
            (tmp_path / "inputs" / "hostile.toml").write_text(case.config)
    before = tree(tmp_path)
    running = {
        case.name: _start(case, work, _env(tmp_path, index))
        for index, case in enumerate(all_cases)
        if case.process
    }
    failures = []
    for index, case in enumerate(all_cases):
        if case.process:
            out_bytes, err_bytes = running[case.name].communicate(timeout=240)
            out, err = out_bytes.decode(errors="replace"), err_bytes.decode(errors="replace")
            code = running[case.name].returncode
        else:
            out, err, code = _invoke(case, work, _env(tmp_path, index))
        problems = _problems(case, code, out, err)
        if problems:
            failures.append(
                f"{case.name}: {'; '.join(problems)}\n  stdout={out!r}\n  stderr={err!r}"
            )
    assert not failures, "\n".join(failures)

    created = sorted(path for path in tree(tmp_path) - before if not path.startswith("data"))
    assert created == [], "written outside the data dir"
    assert not (tmp_path / "prefect").exists(), "Prefect started"
    # A hostile site id is data: it lands as validation leaves it (invisible characters
    # stripped, so the zero-width space's site is the configured one) and names no file
    # or directory.
    landed = duckdb.execute(
        "SELECT DISTINCT site_id FROM read_parquet(?) ORDER BY site_id",
        [str(tmp_path / "data" / "*" / "lake" / "events" / "*" / "*.parquet")],
    ).fetchall()
    stripped = {strip_control_characters(site) for site in HOSTILE_SITES}
    assert sorted(site for (site,) in landed) == sorted({SITE, *stripped})
    for path in tree(tmp_path / "data"):
        assert not any(site in path for site in HOSTILE_SITES if site != SITE), path


@pytest.mark.parametrize("name", ["bad-utf8.jsonl"])
def test_valid_lines_beside_bad_bytes_land(tmp_path: Path, name: str) -> None:
    """In process: the two valid events of the bad-UTF-8 file land, the two bad lines are
    rejected with a reason, and the rejects are kept under the data dir."""
    from pipeline.config import load_settings
    from pipeline.lake.importer import import_file

    cases(tmp_path / "inputs")
    settings = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path / "data")})
    report = import_file(settings, tmp_path / "inputs" / name, lambda _: None)
    assert (report.accepted, report.rejected) == (2, 2)
    assert [line.split(": ")[1] for line in report.reject_lines] == ["bad_json", "bad_json"]
    ids = duckdb.execute(
        "SELECT event_id FROM read_parquet(?) ORDER BY 1",
        [str(settings.lake_dir / "events" / "*" / "*.parquet")],
    ).fetchall()
    assert ids == [("ok-1",), ("ok-2",)]


def _env(tmp_path: Path, index: int) -> dict[str, str]:
    return cli_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data" / str(index)),
        PREFECT_HOME=str(tmp_path / "prefect"),
        SESSIONFLOW_FLOWS__LOCK_WAIT_SECONDS="0",
    )


def _start(case: Case, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pipeline.cli", *case.args]
    return subprocess.Popen(
        [os.fsencode(arg) for arg in command],  # the invalid UTF-8 argument as its bytes
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _invoke(case: Case, cwd: Path, env: dict[str, str]) -> tuple[str, str, int]:
    from click.testing import CliRunner

    from pipeline.cli import cli

    # The runner changes os.environ for the call; drop what cli_env dropped too.
    overrides: dict[str, str | None] = {
        name: None
        for name in os.environ
        if name.startswith(("SESSIONFLOW_", "KAFKA_", "PREFECT_API_URL"))
    }
    overrides.update(env)
    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, list(case.args), env=overrides, prog_name="sessionflow")
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{case.name}: raised {result.exception!r}")
    return result.stdout, result.stderr, result.exit_code


def _problems(case: Case, code: int, out: str, err: str) -> list[str]:
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    problems = []
    if code != case.exit_code:
        problems.append(f"exit {code}, expected {case.exit_code}")
    if "Traceback" in err or "Traceback" in out:
        problems.append("a traceback")
    if case.says not in out + err:
        problems.append(f"no {case.says!r}")
    if case.exit_code in (1, 2) and len(errors) != 1:
        problems.append(f"{len(errors)} 'Error:' lines")
    return problems
