"""Prefect flow: load a marketing-cost file (CSV or Parquet) into the warehouse.

The same all-or-nothing, per-group replacement as `sessionflow costs load`, as a flow
run: retried, logged, and its summary kept as an artifact; then the built days whose
costs it changed are rebuilt at once. Served on demand by `sessionflow serve`
(deployment "load-costs", parameter `path`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.daily import rebuild_days
from pipeline.config import load_settings
from pipeline.warehouse.costs import CostLoad, CostLoadError, load_costs
from pipeline.warehouse.lock import hold_warehouse


@task(retries=1, retry_delay_seconds=2)
def load(path: str, config_path: str | None) -> CostLoad:
    settings = load_settings(config_path)
    try:
        with hold_warehouse(settings, f"costs load {path}", get_run_logger().info):
            return load_costs(settings, Path(path))
    except CostLoadError as failure:
        for error in failure.errors[:50]:
            get_run_logger().error(error.line())
        raise


@flow(name="sessionflow-cost-loading")
def cost_loading(path: str, config_path: str | None = None, rebuild: bool = True) -> str:
    """Load the file, then (unless `rebuild` is off) rebuild the built days it touched."""
    loaded: CostLoad = load(path, config_path)
    lines = [loaded.line()]
    if rebuild and loaded.dates:
        lines += [
            line for day in rebuild_days(list(loaded.dates), config_path) for line in day.lines()
        ]
    summary = "\n".join(lines)
    create_markdown_artifact(key="cost-loading", markdown=f"# Cost loading\n\n{summary}")
    return summary
