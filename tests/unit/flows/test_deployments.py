from __future__ import annotations

from pathlib import Path

from flows.deployments import build_deployments
from pipeline.config import load_settings
from tests.conftest import clean_env, run_cli


def test_daily_deployment_follows_the_configured_cron(tmp_path: Path) -> None:
    settings = load_settings(environ={"SESSIONFLOW_FLOWS__DAILY_CRON": "15 3 * * *"})
    daily, costs = build_deployments(settings, "sessionflow.toml")
    assert daily.name == "daily"
    assert daily.schedules[0].schedule.cron == "15 3 * * *"
    assert daily.parameters == {"config_path": "sessionflow.toml"}
    assert (costs.name, costs.schedules) == ("load-costs", [])


def test_serve_needs_a_prefect_server(tmp_path: Path) -> None:
    env = clean_env(SESSIONFLOW_DATA_DIR=str(tmp_path))
    env.pop("PREFECT_API_URL", None)
    result = run_cli(env, "serve")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: set PREFECT_API_URL to a Prefect server (start one locally: make prefect-server)"
    )


def test_bad_cron_names_its_key() -> None:
    env = clean_env(SESSIONFLOW_FLOWS__DAILY_CRON="every day")
    env.pop("PREFECT_API_URL", None)
    result = run_cli(env, "serve")
    assert result.returncode == 1
    assert "flows.daily_cron" in result.stderr
