"""Prefect flows: one day's aggregation, and a backfill over a range of days.

Each day is built atomically and idempotently by pipeline.warehouse.build_day (its rows
are replaced in one transaction, its marts file by file), then checked. Backfill days are
independent, so they run in parallel on a bounded thread pool (DuckDB serialises the
short commits); a day whose marts are all published is complete and is skipped unless
`force`, so a killed backfill resumes where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows.quality import Check, as_markdown, check_day
from pipeline.config import Settings, load_settings
from pipeline.lake.compaction import compact_date
from pipeline.lake.paths import build_windows
from pipeline.lake.store import Lake
from pipeline.warehouse.build import build_day
from pipeline.warehouse.publish import OUTPUTS


@dataclass(frozen=True)
class DayOutcome:
    day: date
    rows: dict[str, int]
    checks: list[Check]
    skipped: bool = False

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"{self.day}: already built (use --force to rebuild)"]
        counts = ", ".join(f"{table} {n}" for table, n in sorted(self.rows.items()))
        head = f"{self.day}: built ({counts})"
        return [
            head,
            *(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks),
        ]


def is_complete(settings: Settings, day: date) -> bool:
    """Marts are published after the warehouse commit: all present means the day is done."""
    return all(output.mart_path(settings.marts_dir, day).exists() for output in OUTPUTS)


@task(task_run_name="compact the lake")
def compact_lake(days: list[date], config_path: str | None) -> int:
    """Merge small lake files of the days a build reads. Runs once, before any build, so
    no build reads a file that a compaction is deleting."""
    settings = load_settings(config_path)
    lake = Lake(settings.lake_dir, settings.timezone)
    wanted = build_windows(days)
    results = [compact_date(lake, d.isoformat(), settings.consumer_state_dir) for d in wanted]
    return sum(result.sources for result in results)


@task(retries=2, retry_delay_seconds=2, task_run_name="build {day}")
def build_and_check(day: date, config_path: str | None) -> DayOutcome:
    settings = load_settings(config_path)
    built = build_day(settings, day)
    checks = check_day(settings, day, built.rows)
    create_markdown_artifact(
        key=f"quality-{day.isoformat()}",
        markdown=as_markdown(day, checks),
        description=f"sessionflow data quality for {day}",
    )
    return DayOutcome(day, built.rows, checks)


@flow(name="sessionflow-daily", log_prints=True)
def daily_aggregation(day: date, config_path: str | None = None) -> DayOutcome:
    compact_lake([day], config_path)
    outcome: DayOutcome = build_and_check(day, config_path)
    for line in outcome.lines():
        get_run_logger().info(line)
    return outcome


# Prefect's task-runner generics do not line up under mypy --strict; the runner is right.
_DEFAULT_RUNNER: Any = ThreadPoolTaskRunner(max_workers=2)


@flow(name="sessionflow-backfill", task_runner=_DEFAULT_RUNNER)
def backfill(
    start: date, end: date, force: bool = False, config_path: str | None = None
) -> list[DayOutcome]:
    logger = get_run_logger()
    settings = load_settings(config_path)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    skipped = [
        DayOutcome(d, {}, [], skipped=True) for d in days if not force and is_complete(settings, d)
    ]
    todo = [d for d in days if force or not is_complete(settings, d)]
    logger.info(
        "backfill %s..%s: %d days to build, %d already built", start, end, len(todo), len(skipped)
    )
    compact_lake(todo, config_path)
    futures = {day: build_and_check.submit(day, config_path) for day in todo}
    outcomes = list(skipped)
    for done, (day, future) in enumerate(futures.items(), start=1):
        outcomes.append(future.result())
        logger.info("progress: %d/%d days built (%s)", done, len(todo), day)
    return sorted(outcomes, key=lambda outcome: outcome.day)


def run_backfill(
    start: date, end: date, *, force: bool, parallel: int, config_path: str | None
) -> list[DayOutcome]:
    runner: Any = ThreadPoolTaskRunner(max_workers=parallel)
    result: list[DayOutcome] = backfill.with_options(task_runner=runner)(
        start, end, force, config_path
    )
    return result
