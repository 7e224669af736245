"""The build manifest: what each built day was built from, and which days are stale.

Snowplow's incremental manifest, dbt-ga4's re-processing of the last days. For every
built day, `build_manifest` holds the fingerprint of everything that determines its rows:

    lake     what its window of lake partitions holds: per partition, the rows, the newest
             ingestion and the attribution rules, from the Parquet footers. Compaction
             (which renames files but keeps rows) leaves it unchanged; new or replayed
             events and re-attribution change it.
    attribution  the touches its last non-direct attribution took (stg_touches: the
             non-direct sessions of its users in the look-back, from the lake summaries),
             and the footers, per partition, of the earlier partitions only that
             look-back reads. When late events change those partitions, the touches are
             computed again for the users the day was built with
             (day_attribution_users): the day is stale, named by the partitions' dates,
             only if they differ. (A read-only look, as `status`'s, cannot bring the
             summaries up to date: it calls the day stale when they are behind.)
    costs    the day's marketing_costs rows: how many, their total, the newest load stamp
    config   the settings the build applies: time zone, currency, goals and their
             counting, currency rates, the build window, and each site's own time zone
             and currency (kept readable, so a stale day names the site that changed)
    models   the SQL models' text

A day is up to date when its recorded fingerprint equals the current one. The row is
written only after the day's rows and marts are published, so a kill in between leaves
the day stale, never falsely up to date.

The settings the consumer applies at ingestion (session timeout, lateness, splits) are
not part of the fingerprint: a build cannot re-apply them. The lake files record them
(pipeline.lake.store.sessionization_drift), and `status` reports when they changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import Settings
from pipeline.lake.paths import BuildWindow, LakeLayout
from pipeline.warehouse.models import SQL_DIR, query_sql_model, run_sql_model
from pipeline.warehouse.summaries import (
    PartitionSummary,
    outdated,
    refresh_summaries,
)

# What changed, in the order a day's reason is reported.
NOT_BUILT = "not built yet"
LAKE_CHANGED = "new lake files"
COSTS_CHANGED = "costs changed"
CONFIG_CHANGED = "configuration changed"
MODELS_CHANGED = "models changed"
ATTRIBUTION_CHANGED = "attribution look-back changed"
UP_TO_DATE = "up to date"
FORCED = "forced"


@dataclass(frozen=True)
class Fingerprint:
    lake: str
    costs: str
    config: str
    models: str
    attribution: str = "{}"  # JSON: {"partitions": {date: digest}, "touches": digest}

    def reasons_against(self, recorded: Fingerprint | None) -> list[str]:
        """Why a day built with `recorded` is stale now, but for its attribution
        (Fingerprinter.reasons); empty when it is up to date."""
        if recorded is None:
            return [NOT_BUILT]
        compared = (
            (self.lake, recorded.lake, LAKE_CHANGED),
            (self.costs, recorded.costs, COSTS_CHANGED),
            (self.config, recorded.config, config_reason(self.config, recorded.config)),
            (self.models, recorded.models, MODELS_CHANGED),
        )
        return [reason for now, then, reason in compared if now != then]


@dataclass(frozen=True)
class DayState:
    day: date
    reasons: list[str]  # empty: up to date

    @property
    def stale(self) -> bool:
        return bool(self.reasons)

    def reason(self) -> str:
        return ", ".join(self.reasons) if self.reasons else UP_TO_DATE


class Fingerprinter:
    """The current fingerprint of any day, from one look at the warehouse's costs (its
    tables must exist: pipeline.warehouse.build.ensure_tables)."""

    def __init__(
        self, settings: Settings, con: duckdb.DuckDBPyConnection, *, read_only: bool = False
    ) -> None:
        self.con = con
        self.read_only = read_only  # cannot bring the lake summaries up to date
        self.layout = LakeLayout(settings.lake_dir)
        self.window = BuildWindow.from_settings(settings)
        self.timezone = settings.timezone
        self.config = config_fingerprint(settings)
        self.models = models_fingerprint()
        self._costs = {
            row["date"]: f"{row['rows']}:{row['total']}:{row['loaded']}"
            for row in query_sql_model(con, "checks/cost_versions").to_pylist()
        }

    def current(self, day: date, listed: dict[date, list[Path]] | None = None) -> Fingerprint:
        """`listed`: the files of the partitions the build is about to read, as it listed
        them (default: as listed now), so what is recorded is what was read."""

        def files_on(read: date) -> list[Path]:
            return listed[read] if listed is not None else self.layout.files_on(read)

        window = [path for read in self.window.events(day) for path in files_on(read)]
        return Fingerprint(
            lake=_digest(sorted(self._summary(paths) for paths in _by_partition(window))),
            costs=self._costs.get(day, "none"),
            config=self.config,
            models=self.models,
            attribution=json.dumps(
                {"partitions": self._look_back_partitions(day, files_on)}, sort_keys=True
            ),
        )

    def reasons(self, day: date, recorded: Fingerprint | None) -> list[str]:
        """Why `day`, built with `recorded`, is stale now; empty when it is up to date."""
        now = self.current(day)
        reasons = now.reasons_against(recorded)
        if recorded is not None and (changed := self._attribution_changed(day, now, recorded)):
            shown = ", ".join(changed[:3]) + (
                f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            )
            reasons.append(f"{ATTRIBUTION_CHANGED} (events of {shown})")
        return reasons

    def touches(self, day: date) -> str:
        """The digest of the touches the build of `day` would take now, for the users it
        was built with."""
        first, last = self._touch_window(day)
        run_sql_model(self.con, "checks/day_users_as_built", {"run_date": day})
        cut = self.window.earliest_start(day)
        params = {
            "touch_start": first,
            "touch_end": last,
            "touch_cut": cut,
            "timezone": self.timezone,
        }
        run_sql_model(self.con, "staging/stg_touches", params)
        return touch_digest(self.con)

    def _look_back_partitions(
        self, day: date, files_on: Callable[[date], list[Path]]
    ) -> dict[str, str]:
        """The footers' digest of each partition only the look-back of `day` reads."""
        events = set(self.window.events(day))
        return {
            read.isoformat(): _digest(self._partition(tuple(files)).as_text())
            for read in self.window.touches(day)
            if read not in events and (files := files_on(read))
        }

    def _attribution_changed(self, day: date, now: Fingerprint, recorded: Fingerprint) -> list[str]:
        """The look-back partitions whose events changed, when the touches they give the
        day changed too (or cannot be known: summaries behind, read-only)."""
        then = _attribution_of(recorded)
        if "touches" not in then:
            # Built by a release that did not record its touches: its models fingerprint
            # differs, which already makes it stale.
            return []
        after: dict[str, str] = json.loads(now.attribution)["partitions"]
        before: dict[str, str] = then.get("partitions", {})
        changed = sorted(read for read in {*before, *after} if before.get(read) != after.get(read))
        if not changed:
            return changed
        look_back = self.window.touches(day)
        if self.read_only:
            if outdated(self.con, self.layout, look_back):
                return changed
        else:
            with tempfile.TemporaryDirectory(prefix="sessionflow-plan-") as scratch:
                refresh_summaries(self.con, self.layout, look_back, Path(scratch))
        if self.touches(day) != then["touches"]:
            return changed
        if not self.read_only:
            # The same touches: remember these partitions, not to compute them again.
            run_sql_model(
                self.con,
                "publish/record_attribution",
                {"run_date": day, "attribution": with_touches(now, then["touches"]).attribution},
            )
        return []

    def _touch_window(self, day: date) -> tuple[date, date]:
        touches = self.window.touches(day)
        return (touches[0], touches[-1]) if touches else (day, day - timedelta(days=1))

    def changed_since(self, day: date, moment: datetime) -> list[date]:
        """The dates of `day`'s events window whose partitions got events after `moment`
        (or hold files without statistics, which cannot tell)."""
        changed = []
        for read in self.window.events(day):
            files = self.layout.files_on(read)
            if not files:
                continue
            newest = self._partition(tuple(files)).newest_ingestion
            if not newest or datetime.fromisoformat(newest) > moment:
                changed.append(read)
        return changed

    def has_data(self, day: date) -> bool:
        """Whether `day` has events in the lake (in a partition a site's `day` overlaps)
        or costs: worth building."""
        reach = range(-self.window.zone_days, self.window.zone_days + 1)
        dates = [day + timedelta(days=shift) for shift in reach]
        return day in self._costs or any(self.layout.files_on(read) for read in dates)

    def _summary(self, paths: tuple[Path, ...]) -> tuple[str, str]:
        return paths[0].parent.name, self._partition(paths).as_text()

    # Each partition is in many days' windows: its footers are read once per plan.
    @lru_cache(maxsize=4_096)  # noqa: B019 - one short-lived instance per plan
    def _partition(self, paths: tuple[Path, ...]) -> PartitionSummary:
        return PartitionSummary.of(paths)


def _by_partition(files: list[Path]) -> list[tuple[Path, ...]]:
    partitions: dict[Path, list[Path]] = {}
    for path in files:
        partitions.setdefault(path.parent, []).append(path)
    return [tuple(paths) for paths in partitions.values()]


def config_fingerprint(settings: Settings) -> str:
    """The digest of the build's settings, and each site's zone and currency as they are
    (neither is secret): JSON, compared as text."""
    sites = {
        site: {"timezone": settings.site_timezone(site), "currency": settings.site_currency(site)}
        for site in settings.sites
    }
    return json.dumps({"settings": _settings_digest(settings), "sites": sites}, sort_keys=True)


def config_reason(now: str, then: str) -> str:
    """CONFIG_CHANGED, naming the sites whose zone or currency changed (a fingerprint
    recorded before sites had their own is a bare digest: no names)."""
    try:
        before, after = json.loads(then)["sites"], json.loads(now)["sites"]
    except (ValueError, TypeError, KeyError):
        return CONFIG_CHANGED
    changes = []
    for site in sorted(after):
        for key, label in (("timezone", "time zone"), ("currency", "currency")):
            old, new = before.get(site, {}).get(key), after[site][key]
            if old is not None and old != new:
                changes.append(f"{site} {label} {old} -> {new}")
    return f"{CONFIG_CHANGED} ({'; '.join(changes)})" if changes else CONFIG_CHANGED


def _settings_digest(settings: Settings) -> str:
    return _digest(
        {
            "timezone": settings.timezone,
            "currency": settings.currency,
            "goals": settings.goals,
            "goal_counting": settings.goal_counting,
            "currency_rates": settings.currency_rates,
            "build_window": dataclasses.asdict(BuildWindow.from_settings(settings)),
            "direct_sessions": settings.attribution.direct_sessions,
            "attribution_lookback_days": settings.attribution.lookback_days,
        }
    )


@cache  # the SQL files do not change while a process runs
def models_fingerprint() -> str:
    files = sorted(SQL_DIR.rglob("*.sql"))
    return _digest([f"{path.relative_to(SQL_DIR)}\n{path.read_text()}" for path in files])


# -- plans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyPlan:
    """What a `run daily` for `target` does, day by day, and what it only reports."""

    target: date
    days: list[DayState]  # in date order; the stale ones are built
    # Built days older than the look-back whose window got events older than the
    # look-back since they were built: not rebuilt by a daily run (that is a backfill's
    # decision), named by a quality check. (Older days whose window only got events of
    # the look-back days, in sessions that began before it, are rebuilt.)
    outside_lookback: list[date]


def plan_daily(
    settings: Settings, con: duckdb.DuckDBPyConnection, target: date, *, force: bool
) -> DailyPlan:
    """The target day unless up to date (always when `force`); the look-back days whose
    inputs changed (and those never built that have data); older days whose window
    changed only in the look-back's partitions; every built day whose costs changed,
    however old. Older days whose window or attribution look-back got older events are
    reported (outside_lookback), not built."""
    now = Fingerprinter(settings, con)
    built = recorded(con)
    window_start = target - timedelta(days=settings.flows.lookback_days)
    states = {target: DayState(target, [FORCED] if force else _reasons(now, built, target))}
    for offset in range(1, settings.flows.lookback_days + 1):
        day = target - timedelta(days=offset)
        if day in built or now.has_data(day):
            states[day] = DayState(day, _reasons(now, built, day))
    built_at = built_times(con)
    outside = []
    for day in sorted(built.keys() - states.keys()):
        reasons = now.reasons(day, built[day])
        if COSTS_CHANGED in reasons:
            states[day] = DayState(day, reasons)
        elif LAKE_CHANGED in reasons and day < window_start:
            changed = now.changed_since(day, built_at[day])
            if changed and all(window_start <= read <= target for read in changed):
                # Late events of the look-back, in a session that began before it.
                states[day] = DayState(day, reasons)
            else:
                outside.append(day)
        elif day < window_start and any(r.startswith(ATTRIBUTION_CHANGED) for r in reasons):
            # Late events of its attribution look-back: as old, so a backfill's decision.
            outside.append(day)
    return DailyPlan(target, [states[day] for day in sorted(states)], outside)


def plan_days(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    days: list[date],
    *,
    force: bool,
    read_only: bool = False,
) -> list[DayState]:
    """Each of `days` with why it must be built; up to date ones have no reasons.
    `read_only`: a look that cannot bring the lake summaries up to date (`status`)."""
    now = Fingerprinter(settings, con, read_only=read_only)
    built = recorded(con)
    return [DayState(day, [FORCED] if force else _reasons(now, built, day)) for day in days]


def _reasons(now: Fingerprinter, built: dict[date, Fingerprint], day: date) -> list[str]:
    return now.reasons(day, built.get(day))


# -- the table -----------------------------------------------------------------------------


def recorded(con: duckdb.DuckDBPyConnection) -> dict[date, Fingerprint]:
    """Every built day's recorded fingerprint."""
    return {
        row["date"]: Fingerprint(
            row["lake"], row["costs"], row["config"], row["models"], row.get("attribution", "{}")
        )
        for row in query_sql_model(con, "checks/manifest").to_pylist()
    }


def built_times(con: duckdb.DuckDBPyConnection) -> dict[date, datetime]:
    """When each built day was last built."""
    return {
        row["date"]: row["built_at"] for row in query_sql_model(con, "checks/manifest").to_pylist()
    }


def record(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date, fingerprint: Fingerprint
) -> None:
    """Mark `day` up to date as of `fingerprint`. Call only once its marts are published."""
    run_sql_model(
        con,
        "publish/record_build",
        {
            "run_date": day,
            "lake": fingerprint.lake,
            "costs": fingerprint.costs,
            "config": fingerprint.config,
            "models": fingerprint.models,
            "attribution": fingerprint.attribution,
            "built_at": datetime.now(UTC),
        },
    )


def touch_digest(con: duckdb.DuckDBPyConnection) -> str:
    """The digest of the connection's stg_touches (any order)."""
    (row,) = query_sql_model(con, "checks/touch_digest").to_pylist()
    return str(row["digest"])


def with_touches(fingerprint: Fingerprint, touches: str) -> Fingerprint:
    """`fingerprint` with the digest of the touches its build took (Fingerprinter.touches)."""
    attribution = {**json.loads(fingerprint.attribution), "touches": touches}
    return dataclasses.replace(fingerprint, attribution=json.dumps(attribution, sort_keys=True))


def _attribution_of(fingerprint: Fingerprint) -> dict[str, Any]:
    try:
        value = json.loads(fingerprint.attribution)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
