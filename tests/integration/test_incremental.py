"""Numbers that stay right when data arrives late: the build manifest decides which days
`run daily`, `backfill` and `costs load --rebuild` build, through the CLI as users run it
(a temporary Prefect server per command)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import load_settings
from pipeline.warehouse.lock import warehouse_lock
from tests.conftest import clean_env, run_cli

D = "2026-11-10"


def event(event_id: str, ts: str, visitor: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "event_name": "page_view", "event_ts": ts,
            "site_id": "shop.example", "visitor_id": visitor, **fields}  # fmt: skip


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data"), PREFECT_HOME=str(tmp_path / "prefect"),
        **extra,
    )  # fmt: skip


def ok(result: subprocess.CompletedProcess[str], *codes: int) -> str:
    assert result.returncode in (codes or (0,)), result.stdout + result.stderr
    return result.stdout


def query(env: dict[str, str], sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(run_cli(env, "query", "--format", "json", sql)))
    return rows


def lake_sessions(tmp_path: Path) -> dict[str, str]:
    files = str(tmp_path / "data" / "lake" / "events" / "*" / "*.parquet")
    rows = duckdb.execute("SELECT event_id, session_id FROM read_parquet(?)", [files]).fetchall()
    return dict(rows)


def test_late_costs_reach_a_built_day_and_an_unchanged_run_builds_nothing(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    events = [
        event("d1", f"{D}T10:00:00Z", "v1", utm_source="google", utm_medium="cpc"),
        event("d2", "2026-11-11T10:00:00Z", "v2"),
    ]
    ok(run_cli(env, "import", str(write_jsonl(tmp_path / "events.jsonl", events))))
    ok(run_cli(env, "run", "daily", "--date", D))
    costs = tmp_path / "costs.csv"
    costs.write_text(f"date,source,medium,cost,currency\n{D},google,cpc,8,USD\n")
    loaded = ok(run_cli(env, "costs", "load", str(costs)))
    assert "the next `sessionflow run daily` rebuilds" in loaded

    daily = ok(run_cli(env, "run", "daily", "--date", "2026-11-11"))

    assert f"{D}: costs changed: built" in daily
    assert "2026-11-11: not built yet: built" in daily
    cost_rows = query(env, f"SELECT source, cost, cost_per_session FROM daily_cost_per_session "
                           f"WHERE date = '{D}'")  # fmt: skip
    assert cost_rows == [{"source": "google", "cost": 8.0, "cost_per_session": 8.0}]
    summary = query(env, f"SELECT cost_per_session FROM daily_site_summary WHERE date = '{D}'")
    assert summary == [{"cost_per_session": 8.0}]

    again = ok(run_cli(env, "run", "daily", "--date", "2026-11-11"))
    assert f"{D}: up to date" in again and "2026-11-11: up to date" in again
    assert ": built" not in again

    # A corrected export, loaded with --rebuild: the day is right at once.
    costs.write_text(f"date,source,medium,cost,currency\n{D},google,cpc,12,USD\n")
    rebuilt = ok(run_cli(env, "costs", "load", "--rebuild", str(costs)))
    assert f"{D}: costs changed: built" in rebuilt
    assert query(env, f"SELECT cost FROM daily_site_summary WHERE date = '{D}'") == [{"cost": 12.0}]


def test_late_events_rebuild_the_look_back_and_older_days_are_reported(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    old = "2026-10-20"
    first = [
        event("d1", f"{D}T10:00:00Z", "v1"),
        event("d2", f"{D}T10:05:00Z", "v1"),
        event("o1", f"{old}T09:00:00Z", "v9"),
    ]
    ok(run_cli(env, "import", str(write_jsonl(tmp_path / "first.jsonl", first))))
    ok(run_cli(env, "backfill", "--start", old, "--end", D), 0, 4)
    before = lake_sessions(tmp_path)

    late = [event("late-d", f"{D}T18:00:00Z", "v3"), event("late-o", f"{old}T12:00:00Z", "v8")]
    ok(run_cli(env, "import", str(write_jsonl(tmp_path / "late.jsonl", late))))
    daily = run_cli(env, "run", "daily", "--date", "2026-11-11")

    assert daily.returncode == 4, daily.stderr  # the outside-look-back check fails
    assert f"{D}: new lake files: built" in daily.stdout
    # The old day, and the days after it whose window reads its partition (up to
    # lookback_days + max_session_days later), are not rebuilt, but named.
    assert f"\n{old}:" not in daily.stdout and "\n2026-10-21:" not in daily.stdout
    named = ", ".join(f"2026-10-{day}" for day in range(20, 27))
    assert (
        f"[FAIL] late events outside the look-back: 7 built days have new lake files and were "
        f"not rebuilt ({named}); include them with: "
        f"sessionflow backfill --start {old} --end 2026-10-26"
    ) in daily.stdout
    # Days before the look-back whose sessions may reach into its late events are rebuilt.
    assert "\n2026-11-07: new lake files: built" in daily.stdout
    sessions = query(env, f"SELECT sessions FROM daily_site_summary WHERE date = '{D}'")
    assert sessions == [{"sessions": 2}]
    after = lake_sessions(tmp_path)
    assert {k: after[k] for k in before} == before  # the earlier events keep their sessions
    lake_ids = {row["session_id"] for row in query(env, "SELECT session_id FROM sessions")}
    assert {after["d1"], after["late-d"]} <= lake_ids


def test_a_config_change_makes_every_built_day_stale_and_backfill_rebuilds_them(
    tmp_path: Path,
) -> None:
    env = env_for(tmp_path)
    events = [event(f"e{n}", f"2026-11-0{n}T10:00:00Z", "v1") for n in (1, 2, 3)]
    events.append({**event("s1", "2026-11-02T10:01:00Z", "v1"), "event_name": "sign_up"})
    ok(run_cli(env, "import", str(write_jsonl(tmp_path / "events.jsonl", events))))
    ok(run_cli(env, "backfill", "--start", "2026-11-01", "--end", "2026-11-03"), 0, 4)
    assert "days built: 3 (2026-11-01..2026-11-03), 0 stale" in ok(run_cli(env, "status"))

    changed = {**env, "SESSIONFLOW_GOALS__SIGN_UP": "5.0"}
    status = ok(run_cli(changed, "status"))
    assert "days built: 3 (2026-11-01..2026-11-03), 3 stale" in status
    assert "stale 2026-11-02: configuration changed" in status

    rebuilt = ok(run_cli(changed, "backfill", "--start", "2026-11-01", "--end", "2026-11-03"), 0, 4)
    assert rebuilt.count(": configuration changed: built") == 3
    assert query(changed, "SELECT date, conversion_value FROM daily_site_summary ORDER BY date")[
        1
    ] == {"date": "2026-11-02", "conversion_value": 5.0}


def test_a_second_writer_waits_for_the_first_then_stops_with_one_line(tmp_path: Path) -> None:
    env = env_for(tmp_path, SESSIONFLOW_FLOWS__LOCK_WAIT_SECONDS="1")
    ok(
        run_cli(
            env,
            "import",
            str(write_jsonl(tmp_path / "e.jsonl", [event("a", f"{D}T10:00:00Z", "v")])),
        )
    )
    settings = load_settings(environ=env)
    with warehouse_lock(settings.data_dir, "backfill (test)", wait_seconds=0, say=print):
        busy = run_cli(env, "run", "daily", "--date", D)
    assert busy.returncode != 0
    message = [line for line in busy.stderr.splitlines() if line.startswith("Error:")]
    assert message == [
        f"Error: the warehouse is busy (pid {__import__('os').getpid()}: backfill (test)); "
        "waited 1 s (flows.lock_wait_seconds): try again when it finishes"
    ], busy.stderr
    assert not (settings.marts_dir / "sessions").exists()
    ok(run_cli(env, "run", "daily", "--date", D))  # once released, it runs
