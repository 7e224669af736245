"""Prefect flows: the daily run, a backfill over a range of days, and rebuilding days.

Which days to build is decided by the build manifest (pipeline.warehouse.manifest): a
day is built when its inputs (lake, costs, configuration, models) differ from what it
was built from. Each day is built atomically and idempotently by
pipeline.warehouse.build.build_day (rows replaced in one transaction, marts file by file,
then the manifest row), then checked. Backfill days are independent and run in parallel
on a bounded thread pool; a killed backfill resumes with exactly the days that are not
up to date. One flow writes the warehouse at a time (pipeline.warehouse.lock).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.quality import Check, as_markdown, check_day, outside_lookback_check
from pipeline.config import Settings, load_settings
from pipeline.lake.compaction import compact_date
from pipeline.lake.paths import BuildWindow
from pipeline.lake.store import Lake
from pipeline.warehouse.build import build_day, open_warehouse
from pipeline.warehouse.lock import hold_warehouse
from pipeline.warehouse.manifest import NOT_BUILT, DayState, plan_daily, plan_days


@dataclass(frozen=True)
class DayOutcome:
    day: date
    reason: str  # why it was built, or "up to date"
    rows: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    built: bool = False

    def lines(self) -> list[str]:
        if not self.built:
            return [f"{self.day}: {self.reason}"]
        counts = ", ".join(f"{table} {n}" for table, n in sorted(self.rows.items()))
        return [
            f"{self.day}: {self.reason}: built ({counts})",
            *(f"  {check.line()}" for check in self.checks),
        ]


@dataclass(frozen=True)
class RunReport:
    days: list[DayOutcome]
    checks: list[Check] = field(default_factory=list)  # about the run, not one day

    def lines(self) -> list[str]:
        run_checks = [check.line() for check in self.checks]
        return [line for outcome in self.days for line in outcome.lines()] + run_checks

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and all(
            c.ok for outcome in self.days for c in outcome.checks
        )


def compact_lake(settings: Settings, days: list[date]) -> int:
    """Merge small lake files of the days a build reads. Runs before planning (it renames
    files) and before any build, so no build reads a file that a compaction deletes.
    A plain call, not a Prefect task: a date already compacted costs one directory
    listing, while a task run costs several API round trips."""
    lake = Lake(settings.lake_dir, settings.timezone)
    dates = BuildWindow.from_settings(settings).all_dates(days)
    results = [compact_date(settings, lake, d.isoformat()) for d in dates]
    compacted = sum(result.sources for result in results)
    if compacted:
        get_run_logger().info("compacted %d lake files", compacted)
    return compacted


# NO_CACHE: results are not persisted, so Prefect's default cache key (a hash of the
# inputs and of the task's source) would be computed for nothing on every day.
@task(retries=2, retry_delay_seconds=2, task_run_name="build {day}", cache_policy=NO_CACHE)
def build_and_check(day: date, reason: str, config_path: str | None) -> DayOutcome:
    settings = load_settings(config_path)
    built = build_day(settings, day)
    checks = check_day(settings, built)
    create_markdown_artifact(
        key=f"quality-{day.isoformat()}",
        markdown=as_markdown(day, checks),
        description=f"sessionflow data quality for {day}",
    )
    return DayOutcome(day, reason, built.rows, checks, built=True)


@flow(name="sessionflow-daily", log_prints=True)
def daily_aggregation(
    day: date | None = None, config_path: str | None = None, force: bool = False
) -> RunReport:
    """`day` (default: `yesterday`, the latest day every site has finished) unless up to
    date, the look-back days whose inputs changed, and every day whose costs changed."""
    settings = load_settings(config_path)
    target = day or yesterday(settings)
    with hold_warehouse(settings, f"run daily {target}", get_run_logger().info):
        lookback = [target - timedelta(days=n) for n in range(settings.flows.lookback_days + 1)]
        compact_lake(settings, lookback)
        with open_warehouse(settings) as con:
            plan = plan_daily(settings, con, target, force=force)
        outcomes = _build(plan.days, config_path)
    report = RunReport(outcomes, [outside_lookback_check(plan.outside_lookback)])
    for line in report.lines():
        get_run_logger().info(line)
    return report


# Prefect's task-runner generics do not line up under mypy --strict; the runner is right.
_DEFAULT_RUNNER: Any = ThreadPoolTaskRunner(max_workers=2)


@flow(name="sessionflow-backfill", task_runner=_DEFAULT_RUNNER)
def backfill(
    start: date, end: date, force: bool = False, config_path: str | None = None
) -> list[DayOutcome]:
    """Every day of the range that is not up to date (all of them when `force`)."""
    settings = load_settings(config_path)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    with hold_warehouse(settings, f"backfill {start}..{end}", get_run_logger().info):
        compact_lake(settings, days)
        with open_warehouse(settings) as con:
            states = plan_days(settings, con, days, force=force)
        stale = sum(state.stale for state in states)
        get_run_logger().info(
            "backfill %s..%s: %d days to build, %d up to date",
            start, end, stale, len(states) - stale,
        )  # fmt: skip
        return _build(states, config_path)


@flow(name="sessionflow-rebuild")
def rebuild_days(days: list[date], config_path: str | None = None) -> list[DayOutcome]:
    """Rebuild those of `days` that were built and are stale now (e.g. the days a cost
    load touched); days never built are left to `run daily` or `backfill`."""
    settings = load_settings(config_path)
    with hold_warehouse(settings, f"rebuild {len(days)} days", get_run_logger().info):
        with open_warehouse(settings) as con:
            states = plan_days(settings, con, days, force=False)
        built_before = [state for state in states if NOT_BUILT not in state.reasons]
        return _build(built_before, config_path)


# Who hears of each day of a running backfill as it is done, up to date or built (the
# CLI's progress). run_backfill sets it: a flow's parameters are stored as JSON, so a
# callback cannot be one.
_DAY_DONE: list[Callable[[DayOutcome], None]] = []


def run_backfill(
    start: date,
    end: date,
    *,
    force: bool,
    parallel: int,
    config_path: str | None,
    day_done: Callable[[DayOutcome], None] | None = None,
) -> list[DayOutcome]:
    runner: Any = ThreadPoolTaskRunner(max_workers=parallel)
    _DAY_DONE[:] = [day_done] if day_done else []
    try:
        result: list[DayOutcome] = backfill.with_options(task_runner=runner)(
            start, end, force, config_path
        )
    finally:
        _DAY_DONE.clear()
    return result


def yesterday(settings: Settings, now: datetime | None = None) -> date:
    """The latest date that has ended in every site's time zone: a site's day is complete
    only after its own midnight, so a site west of the others holds the target back."""
    moment = now or datetime.now(UTC)
    zones = {settings.site_timezone(site) for site in settings.sites}
    return min(moment.astimezone(ZoneInfo(zone)).date() for zone in zones) - timedelta(days=1)


def _build(states: list[DayState], config_path: str | None) -> list[DayOutcome]:
    """Build the stale days on the flow's task runner; report every day in date order."""
    logger = get_run_logger()
    futures = {
        state.day: build_and_check.submit(state.day, state.reason(), config_path)
        for state in states
        if state.stale
    }
    outcomes = [DayOutcome(s.day, s.reason()) for s in states if not s.stale]
    for hear in _DAY_DONE:
        for outcome in outcomes:
            hear(outcome)
    for done, (day, future) in enumerate(futures.items(), start=1):
        outcomes.append(future.result())
        logger.info("progress: %d/%d days built (%s)", done, len(futures), day)
        for hear in _DAY_DONE:
            hear(outcomes[-1])
    return sorted(outcomes, key=lambda outcome: outcome.day)
