"""`sessionflow serve`: the scheduled deployments, served against a Prefect server.

The daily deployment runs `run daily` for *yesterday* (property time zone) on
`flows.daily_cron`: yesterday, the look-back days whose inputs changed, cost changes.
A Prefect server must be reachable: PREFECT_API_URL, or the local one of
`sessionflow prefect start` (the CLI exports its URL as PREFECT_API_URL).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from prefect import flow, get_run_logger, serve

from flows.costs import cost_loading
from flows.daily import RunReport, daily_aggregation
from pipeline.config import Settings, load_settings
from pipeline.errors import SessionflowError
from pipeline.privacy.salts import tidy_secret_files


@flow(name="sessionflow-scheduled-daily")
def scheduled_daily(config_path: str | None = None) -> RunReport:
    """Yesterday (property time zone), plus the look-back days and cost changes. First,
    expired salts are destroyed, as every command that touches them does: `serve` runs
    for months, and salts must die on time with every collector stopped."""
    try:
        tidy_secret_files(load_settings(config_path), datetime.now(UTC))
    except OSError as exc:
        get_run_logger().warning("cannot remove expired salts: %s", exc)
    report: RunReport = daily_aggregation(None, config_path)
    return report


def build_deployments(settings: Settings, config_path: str | None) -> list[Any]:
    return [
        scheduled_daily.to_deployment(
            name="daily",
            cron=settings.flows.daily_cron,
            parameters={"config_path": config_path},
            description="Aggregate yesterday's sessions, costs and quality checks.",
        ),
        cost_loading.to_deployment(
            name="load-costs",
            parameters={"config_path": config_path},
            description="Load a marketing-cost file (run on demand with path=...).",
        ),
    ]


def serve_deployments(settings: Settings, config_path: str | None) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise SessionflowError(
            "set PREFECT_API_URL to a Prefect server (start one locally: make prefect-server)"
        )
    serve(*build_deployments(settings, config_path))
