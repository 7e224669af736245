"""Prefect flow: load a marketing-cost file (CSV or Parquet) into the warehouse.

The same all-or-nothing, per-group replacement as `sessionflow costs load`, as a flow
run: retried, logged, and its summary kept as an artifact. Served on demand by
`sessionflow serve` (deployment "load-costs", parameter `path`).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pipeline.config import load_settings
from pipeline.warehouse.costs import CostLoadError, load_costs


@task(retries=1, retry_delay_seconds=2)
def load(path: str, config_path: str | None) -> str:
    try:
        return load_costs(load_settings(config_path), Path(path)).line()
    except CostLoadError as failure:
        for error in failure.errors[:50]:
            get_run_logger().error(error.line())
        raise


@flow(name="sessionflow-cost-loading")
def cost_loading(path: str, config_path: str | None = None) -> str:
    summary: str = load(path, config_path)
    create_markdown_artifact(key="cost-loading", markdown=f"# Cost loading\n\n{summary}")
    return summary
