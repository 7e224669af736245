"""docs/metrics.md's worked examples (cost per session 8,000 / 10,000 = 0.80, session value
(500 + 200) / 100 = 7.00) end to end through `import`, `costs load`, `backfill` and `query`,
plus resumption and idempotence of the Prefect flows (temporary Prefect server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import clean_env, run_cli


def page_view(n: int, visitor: str, ts: str) -> dict[str, object]:
    return {"event_id": f"pv-{n}", "event_name": "page_view", "event_ts": ts,
            "site_id": "shop.example", "visitor_id": visitor}  # fmt: skip


def metrics_example_events() -> list[dict[str, object]]:
    # 2026-11-01: 10,000 single-page sessions. 2026-11-02: 100 sessions carrying $500 of
    # purchases and 40 sign-ups worth $5 each.
    events = [
        page_view(n, f"a{n}", f"2026-11-01T{n % 24:02d}:{n % 60:02d}:00Z") for n in range(10_000)
    ]
    for n in range(100):
        events.append(page_view(20_000 + n, f"b{n}", f"2026-11-02T10:{n % 60:02d}:00Z"))
    for n in range(5):
        events.append({"event_id": f"buy-{n}", "event_name": "purchase", "event_ts": f"2026-11-02T10:{n:02d}:30Z",
                       "site_id": "shop.example", "visitor_id": f"b{n}", "value": 100.0,
                       "currency": "USD", "transaction_id": f"T{n}"})  # fmt: skip
    for n in range(40):
        events.append({"event_id": f"signup-{n}", "event_name": "sign_up", "event_ts": f"2026-11-02T10:{n:02d}:40Z",
                       "site_id": "shop.example", "visitor_id": f"b{n}"})  # fmt: skip
    return events


def test_metrics_examples_resumption_and_idempotence(tmp_path: Path) -> None:
    env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data"),
        SESSIONFLOW_GOALS__SIGN_UP="5.0",
        PREFECT_HOME=str(tmp_path / "prefect"),
    )
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for e in metrics_example_events()) + "\n")
    costs = tmp_path / "costs.csv"
    costs.write_text(
        "date,source,medium,campaign,cost,currency\n2026-11-01,google,cpc,brand,8000,USD\n"
    )
    assert run_cli(env, "import", str(events)).returncode == 0
    assert run_cli(env, "costs", "load", str(costs)).returncode == 0

    # A progress line on stderr as each day is done (at every day: interval 0).
    every_day = {**env, "SESSIONFLOW_PROGRESS_INTERVAL": "0"}
    built = run_cli(every_day, "backfill", "--start", "2026-11-01", "--end", "2026-11-02")
    assert built.returncode in (0, 4), built.stderr  # 4: a quality check flagged something
    assert re.findall(r"^backfill: (\d) / 2 days \((\d+)%\)", built.stderr, re.M) == [
        ("1", "50"), ("2", "100"), ("2", "100"),
    ]  # fmt: skip
    assert "\x1b" not in built.stderr
    assert "2026-11-01: not built yet: built" in built.stdout
    assert "2026-11-02: not built yet: built" in built.stdout

    summary = run_cli(env, "query", "--format", "json",
                      "SELECT date, sessions, cost, cost_per_session, revenue, conversion_value, "
                      "session_value FROM daily_site_summary ORDER BY date")  # fmt: skip
    assert summary.returncode == 0, summary.stderr
    first, second = json.loads(summary.stdout)
    assert (first["sessions"], first["cost"], first["cost_per_session"]) == (10_000, 8000.0, 0.8)
    assert (second["sessions"], second["revenue"], second["conversion_value"]) == (
        100,
        500.0,
        200.0,
    )
    assert second["session_value"] == 7.0

    before = run_cli(
        env, "query", "--format", "json", "SELECT * FROM sessions ORDER BY session_id"
    ).stdout
    resumed = run_cli(env, "backfill", "--start", "2026-11-01", "--end", "2026-11-02")
    assert resumed.stdout.count(": up to date") == 2
    assert "backfill: 2 / 2 days (100%)" in resumed.stderr  # up to date is done too
    again = run_cli(env, "run", "daily", "--date", "2026-11-02", "--force")
    assert "2026-11-02: forced: built" in again.stdout, again.stderr
    after = run_cli(
        env, "query", "--format", "json", "SELECT * FROM sessions ORDER BY session_id"
    ).stdout
    assert after == before  # re-running a day gives identical rows
