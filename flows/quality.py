"""Data-quality checks after each day's build: results for the CLI and a Prefect artifact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.duckdb_connections import connect
from pipeline.lake.paths import LakeLayout
from pipeline.lake.store import footer_range
from pipeline.safe_text import for_markdown, for_terminal, listed
from pipeline.warehouse.build import DayBuild, QualityRow, quality_rows

# A lake whose newest event was ingested longer ago than this is reported as stale.
FRESHNESS_LIMIT_HOURS = 26


@dataclass(frozen=True)
class Check:
    """One check's result. Its detail may name campaigns (a visitor's utm_campaign):
    `line` and `as_markdown` show it escaped, so no text from the data acts there."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return for_terminal(f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}")

    @classmethod
    def listing(cls, row: QualityRow) -> Check:
        """A check of checks/quality_checks with its names after the detail: at most
        MAX_LISTED, each cut, then how many more."""
        name, ok, detail, names, named = row
        return cls(name, ok, f"{detail}: {listed(names, named)}" if names else detail)


def check_day(settings: Settings, built: DayBuild) -> list[Check]:
    day, rows = built.day, built.rows
    if built.quality:  # run by the build on its own connection, after its commit
        checks = [Check.listing(row) for row in built.quality]
    else:
        with connect(settings, settings.warehouse_path) as con:
            checks = [Check.listing(row) for row in quality_rows(con, settings, day)]
    checks.append(_freshness(settings))
    counts = ", ".join(f"{table} {count}" for table, count in sorted(rows.items()))
    checks.append(Check("row counts", rows.get("sessions", 0) > 0, counts))
    checks.append(
        Check(
            "sessions within max_session_days",
            built.cut_sessions == 0,
            f"{built.cut_sessions} sessions (dated this day, or with events on it) had events "
            f"more than {settings.flows.max_session_days} days after their start (cut, not "
            f"counted)",
        )
    )
    checks.append(
        Check(
            "refunds matched to their purchase",
            built.unmatched_refunds == 0,
            f"{built.unmatched_refunds} refunds without a value have no purchase of their "
            f"transaction in the build's window (they return nothing)",
        )
    )
    unrated = unrated_sites(settings)
    checks.append(
        Check(
            "amounts in the reporting currency",
            built.unconverted_values + built.unconverted_costs == 0 and not unrated,
            f"in a currency without a rate (left out of the sums): event values "
            f"{built.unconverted_values}, cost rows {built.unconverted_costs}"
            + (
                f"; sites whose own currency has no rate (no reporting-currency totals): "
                f"{', '.join(unrated)}"
                if unrated
                else ""
            ),
        )
    )
    return checks


def unrated_sites(settings: Settings) -> list[str]:
    """The sites whose currency [currency_rates] cannot convert to the reporting one."""
    return sorted(
        site
        for site in settings.sites
        if settings.rate_to_reporting(settings.site_currency(site)) is None
    )


def _freshness(settings: Settings) -> Check:
    files = LakeLayout(settings.lake_dir).event_files()
    if not files:
        return Check("freshness", False, "the lake has no events")
    ingested = _newest_ingestion(settings, files[-50:])
    if ingested is None:
        return Check("freshness", False, "no ingested_at in the lake")
    hours = (datetime.now(UTC) - ingested).total_seconds() / 3600
    return Check(
        "freshness",
        hours <= FRESHNESS_LIMIT_HOURS,
        f"newest event ingested {hours:.1f} h ago (limit {FRESHNESS_LIMIT_HOURS} h)",
    )


def _newest_ingestion(settings: Settings, files: list[Path]) -> datetime | None:
    """max(ingested_at) of `files`: from their Parquet footers (no data page read, which
    on a 10M-event day is a column scan); from the data when a file has no statistics."""
    newest: datetime | None = None
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        if metadata.num_rows == 0:
            continue
        span = footer_range(metadata, "ingested_at")
        if span is None:
            with connect(settings) as con:
                row = con.execute(
                    "SELECT max(ingested_at) FROM read_parquet(?)", [[str(p) for p in files]]
                ).fetchone()
            return row[0] if row else None
        if span[1] is not None and (newest is None or span[1] > newest):
            newest = span[1]
    return newest


def outside_lookback_check(days: list[date]) -> Check:
    """Built days older than the daily look-back whose lake partitions changed since: the
    daily run leaves them alone; this names them and the backfill that would include them."""
    if not days:
        return Check("late events outside the look-back", True, "none")
    shown = listed([day.isoformat() for day in days])
    return Check(
        "late events outside the look-back",
        False,
        f"{len(days)} built days have new lake files and were not rebuilt ({shown}); "
        f"include them with: sessionflow backfill --start {days[0]} --end {days[-1]}",
    )


def as_markdown(day: date, checks: list[Check]) -> str:
    """The checks as a markdown table (a Prefect artifact); each cell's text is literal."""
    lines = [
        f"# Data quality for {day.isoformat()}",
        "",
        "| check | ok | detail |",
        "|---|---|---|",
    ]
    lines += [
        f"| {for_markdown(c.name)} | {'yes' if c.ok else '**no**'} | {for_markdown(c.detail)} |"
        for c in checks
    ]
    return "\n".join(lines)
