from __future__ import annotations

from pathlib import Path

from tests.conftest import clean_env, run_cli


def test_costs_load_lists_bad_rows_and_exits_non_zero(tmp_path: Path) -> None:
    bad = tmp_path / "costs.csv"
    bad.write_text(
        "date,source,medium,cost,currency\n2026-11-01,google,cpc,abc,USD\n2026-11-01,bing,cpc,5,usd\n"
    )
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path / "data"))
    result = run_cli(env, "costs", "load", str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "line 2: cost: 'abc' is not a number",
        "line 3: currency: 'usd' is not an ISO 4217 code (did you mean 'USD'?)",
        f"Error: 2 bad rows in {bad}; nothing loaded",
    ]
    good = tmp_path / "good.csv"
    good.write_text("date,source,medium,cost,currency\n2026-11-01,google,cpc,8000,USD\n")
    loaded = run_cli(env, "costs", "load", str(good))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.startswith("loaded 1 cost rows for 2026-11-01..2026-11-01")


def test_costs_load_as_a_prefect_flow(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("date,source,medium,cost,currency\n2026-11-01,google,cpc,12.5,USD\n")
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path / "data"), PREFECT_HOME=str(tmp_path / "p"))
    result = run_cli(env, "costs", "load", "--flow", str(good))
    assert result.returncode == 0, result.stderr
    assert "loaded 1 cost rows for 2026-11-01..2026-11-01" in result.stdout
