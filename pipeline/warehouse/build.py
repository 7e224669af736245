"""The warehouse build (imperative shell): one day's SQL models, stored and published.

1. prepare the connection: settings, the warehouse tables, the config tables the models
   read (goals, currency_rates, site_settings);
2. run the day's models (pipeline.warehouse.models.DAY_MODELS) into TEMP tables over
   the lake files of the day's window (pipeline.lake.paths.BuildWindow);
3. in one transaction, replace the day's rows of each output table, then the week's and
   the month's;
4. publish the day's file of each mart (pipeline.warehouse.publish).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.config import Settings
from pipeline.duckdb_connections import connect, memory_bounded
from pipeline.errors import SessionflowError
from pipeline.faults import fault_point
from pipeline.lake.files import disk_error
from pipeline.lake.paths import BuildWindow, LakeLayout
from pipeline.lake.reattribution import needs_reattribution
from pipeline.safe_text import MAX_LISTED
from pipeline.warehouse.manifest import (
    Fingerprinter,
    config_fingerprint,
    models_fingerprint,
    record,
    touch_digest,
    with_touches,
)
from pipeline.warehouse.model_keys import check_model_keys
from pipeline.warehouse.models import (
    DAY_MODELS,
    PERIOD_MODELS,
    SETUP_MODELS,
    query_sql_model,
    read_sql,
    run_sql_model,
)
from pipeline.warehouse.publish import DAY_OUTPUTS, PERIOD_OUTPUTS, publish_marts, replace_period
from pipeline.warehouse.summaries import (
    SUMMARIES,
    WRITE_LOCK,
    empty_lake_file,
    refresh_summaries,
)

MONEY = pa.decimal128(18, 4)
# The model that reads the day's raw events, and the parameters only Python reads.
DAY_EVENTS_MODEL = "staging/stg_events"
READS = "reads"
SCRATCH = "scratch"
MIGRATIONS = "publish/warehouse_migrations"


# A check's name, whether it passed, its detail, the first names it lists and how many
# there are (checks/quality_checks.sql).
QualityRow = tuple[str, bool, str, tuple[str, ...], int]


@dataclass(frozen=True)
class DayBuild:
    day: date
    rows: dict[str, int]  # warehouse table -> rows written for the day (the week, month)
    unconverted_values: int  # amounts in a currency without a rate (or past DECIMAL): not summed
    unconverted_costs: int  # cost rows in a currency without a rate: not summed
    cut_sessions: int  # sessions with events beyond flows.max_session_days, left out
    unmatched_refunds: int  # refunds without a value whose purchase is not in the window
    marts: tuple[Path, ...]
    # checks/quality_checks's rows (name, ok, detail, names, named), run on the build's
    # own connection right after its commit: no second connection, no catalog to load again.
    quality: tuple[QualityRow, ...] = ()


@dataclass(frozen=True)
class LakeReads:
    """The lake partitions a build reads (pipeline.lake.paths.BuildWindow), their files
    listed once. The partitions of its events window are summarised (the lake summaries)
    and fingerprinted; the day's own events are read raw, from the partitions of its
    reach its sessions have events on; the look-back's are only summarised."""

    layout: LakeLayout
    files: dict[date, list[Path]]  # every partition of the window and the look-back
    events_window: tuple[date, date]
    touch_window: tuple[date, date]  # start after end: no look-back (direct kept)
    touch_cut: datetime  # BuildWindow.earliest_start: stg_touches keeps one touch before it
    reach: tuple[date, ...]

    @property
    def all_files(self) -> list[Path]:
        return [path for _, paths in sorted(self.files.items()) for path in paths]


def lake_reads(settings: Settings, day: date) -> LakeReads:
    window = BuildWindow.from_settings(settings)
    layout = LakeLayout(settings.lake_dir)
    events, touches = window.events(day), window.touches(day)
    return LakeReads(
        layout=layout,
        files={read: layout.files_on(read) for read in window.dates(day)},
        events_window=(events[0], events[-1]),
        touch_window=(touches[0], touches[-1]) if touches else (day, day - timedelta(days=1)),
        reach=tuple(window.reach(day)),
        touch_cut=window.earliest_start(day),
    )


def build_day(settings: Settings, day: date) -> DayBuild:
    """Build `day` from the lake and marketing_costs, replace its rows in the warehouse,
    publish its marts, then record what it was built from in the build manifest. Running
    it again for the same inputs gives the same rows."""
    with (
        memory_bounded(settings, f"building {day}"),
        open_warehouse(settings) as con,
        tempfile.TemporaryDirectory(prefix="sessionflow-build-") as scratch,
    ):
        register_config_tables(con, settings)
        reads = lake_reads(settings, day)
        _check_attribution(reads.all_files, day)
        # Taken before the models read anything: what arrives meanwhile makes the day
        # stale again instead of being recorded as read.
        fingerprint = Fingerprinter(settings, con).current(day, reads.files)
        params = model_parameters(settings, day, reads, Path(scratch))
        run_day_models(con, params)
        fingerprint = with_touches(fingerprint, touch_digest(con))

        # Commit and publish one build at a time: days compute in parallel, but the
        # month-to-date row and its mart must reflect every commit before them.
        with WRITE_LOCK:
            con.begin()
            try:
                store_day(con, params)
            except BaseException:
                con.rollback()
                raise
            try:
                con.commit()
            except duckdb.Error as exc:
                # A COMMIT that failed (a full disk) has already rolled back: a second
                # rollback would raise and hide why.
                with suppress(duckdb.Error):
                    con.rollback()
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise SessionflowError(
                    f"cannot store {day} in the warehouse ({settings.warehouse_path}): "
                    f"{first}; its rows and marts are unchanged and it is not recorded as built"
                ) from exc
            fault_point("after_commit")
            try:
                rows, marts = publish_marts(con, settings.marts_dir, day)
            except OSError as exc:
                raise disk_error(
                    f"{day}'s marts",
                    exc,
                    "its previous marts are unchanged and it is not recorded as built; "
                    "fix the disk and build it again",
                ) from exc
            fault_point("after_marts")
            # Only now: a kill before this line leaves the day stale, not falsely built.
            record(con, settings, day, fingerprint)
            fault_point("after_manifest")
        stats = query_sql_model(con, "checks/build_stats", params).to_pylist()[0]
        quality = tuple(quality_rows(con, settings, day))
    return DayBuild(
        day=day,
        rows=rows,
        unconverted_values=int(stats["unconverted_values"]),
        unconverted_costs=int(stats["unconverted_costs"]),
        cut_sessions=int(stats["cut_sessions"]),
        unmatched_refunds=int(stats["unmatched_refunds"]),
        marts=tuple(marts),
        quality=quality,
    )


def quality_rows(con: duckdb.DuckDBPyConnection, settings: Settings, day: date) -> list[QualityRow]:
    """checks/quality_checks's rows: at most MAX_LISTED names each, the count of all. The
    current settings' and models' fingerprints tell the days that are stale by them."""
    params = {
        "run_date": day,
        "max_listed": MAX_LISTED,
        "config_fingerprint": config_fingerprint(settings),
        "models_fingerprint": models_fingerprint(),
    }
    rows = query_sql_model(con, "checks/quality_checks", params)
    return [
        (str(r["name"]), bool(r["ok"]), str(r["detail"]), tuple(r["names"]), int(r["named"]))
        for r in rows.to_pylist()
    ]


def store_day(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> None:
    """Replace the day's rows of the output tables with this run's, then rebuild and
    replace the week's and the month's. Run inside one transaction."""
    day: date = params["run_date"]
    for output in DAY_OUTPUTS:
        replace_period(con, output, day)
    for name in PERIOD_MODELS:
        run_sql_model(con, name, params)
    check_model_keys(con, PERIOD_MODELS)
    for output in PERIOD_OUTPUTS:
        replace_period(con, output, day)


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the warehouse, its tables created when missing."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with connect(settings, settings.warehouse_path) as con:
        ensure_tables(con)
        yield con


def prepare_connection(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Connection settings, the warehouse tables (created when missing) and the config
    tables the models read: goals(name, value, counting), currency_rates(currency, rate),
    site_settings(site_id, timezone, currency, rate)."""
    ensure_tables(con)
    register_config_tables(con, settings)


def register_config_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    con.register("goals", goals_table(settings))
    con.register("currency_rates", currency_rates_table(settings))
    con.register("site_settings", site_settings_table(settings))


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Connection settings and the warehouse's tables, created when missing, and migrated
    once. One thread at a time: concurrent CREATEs of the same table conflict in DuckDB's
    catalog."""
    with WRITE_LOCK:
        for name in SETUP_MODELS:
            run_sql_model(con, name)
        apply_migrations(con)


def apply_migrations(con: duckdb.DuckDBPyConnection) -> None:
    """Run publish/warehouse_migrations.sql unless this warehouse has it already
    (warehouse_migrations, by the file's digest): run on every connection, its UPDATEs
    would scan every session ever built and leave a checkpoint to write on close."""
    digest = hashlib.sha256(read_sql(MIGRATIONS).encode()).hexdigest()[:16]
    migration = f"{MIGRATIONS} {digest}"
    applied = con.execute(
        "SELECT count(*) FROM warehouse_migrations WHERE migration = ?", [migration]
    ).fetchone()
    if applied and applied[0]:
        return
    # Statement by statement (DuckDB refuses an UPDATE of a table its own transaction
    # altered); each is safe to run again, so one that fails is simply retried next time.
    run_sql_model(con, MIGRATIONS)
    con.execute("INSERT INTO warehouse_migrations VALUES (?, now())", [migration])


def model_parameters(
    settings: Settings, day: date, reads: LakeReads, scratch: Path
) -> dict[str, Any]:
    """The models' parameters, and what run_day_models needs besides: the listed files
    (`reads`) and a `scratch` directory (for an empty lake file in today's schema:
    pipeline.warehouse.summaries.empty_lake_file)."""
    return {
        "run_date": day,
        "timezone": settings.timezone,
        "currency": settings.currency,
        "window_start": reads.events_window[0],
        "window_end": reads.events_window[1],
        "touch_start": reads.touch_window[0],
        "touch_end": reads.touch_window[1],
        "touch_cut": reads.touch_cut,
        "max_session_days": settings.flows.max_session_days,
        "attribution_lookback_days": settings.attribution.lookback_days,
        READS: reads,
        SCRATCH: scratch,
    }


def run_day_models(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> None:
    """The day's models into TEMP tables (the *_this_run tables and the staged ones),
    each model's declared keys checked, after bringing the lake summaries of the
    partitions it reads up to date: nothing persistent but that cache of the lake is
    touched. The connection must be prepared."""
    reads: LakeReads = params[READS]
    scratch: Path = params[SCRATCH]
    refresh_summaries(con, reads.layout, reads.files, scratch)
    # The same summaries for every model: a parallel build summarising a partition
    # meanwhile must not give some models its old rows and others its new ones. Not one
    # transaction: DuckDB keeps a transaction's new temp tables in memory, and a
    # 10M-event day's do not fit a 3 GB limit.
    with SUMMARIES.reading():
        for name in DAY_MODELS:
            if name == DAY_EVENTS_MODEL:
                # Known only now: the partitions of its reach the day's sessions have
                # events on.
                params = {**params, "lake_files": day_event_files(con, reads, scratch)}
            run_sql_model(con, name, params)
        check_model_keys(con, DAY_MODELS)


def day_event_files(con: duckdb.DuckDBPyConnection, reads: LakeReads, scratch: Path) -> list[str]:
    """The files of the partitions of the day's reach that its sessions (stg_day_sessions)
    have events on, and an empty one in today's schema: all the raw events its build
    reads."""
    first, last = reads.reach[0], reads.reach[-1]
    rows = query_sql_model(con, "checks/day_partitions", {"first": first, "last": last})
    dates = [row["event_date"] for row in rows.to_pylist()]
    files = [path for read in dates for path in reads.files.get(read, [])]
    return [str(path) for path in (*files, empty_lake_file(scratch))]


def goals_table(settings: Settings) -> pa.Table:
    names = sorted(settings.goals)
    return pa.table(
        {
            "name": pa.array(names, pa.string()),
            # Via str: 5.0 -> Decimal("5.0"), not the float's binary expansion.
            "value": pa.array([Decimal(str(settings.goals[n])) for n in names], MONEY),
            "counting": pa.array([settings.goal_counting.get(n, "event") for n in names]),
        },
        schema=pa.schema([("name", pa.string()), ("value", MONEY), ("counting", pa.string())]),
    )


def currency_rates_table(settings: Settings) -> pa.Table:
    codes = sorted(settings.currency_rates)
    return pa.table(
        {
            "currency": pa.array(codes, pa.string()),
            "rate": pa.array([settings.currency_rates[c] for c in codes], pa.float64()),
        }
    )


def site_settings_table(settings: Settings) -> pa.Table:
    """Each site's time zone and currency, and its currency's rate: units of the
    reporting currency per unit of it (NULL when [currency_rates] has none)."""
    sites = sorted(settings.sites)
    currencies = [settings.site_currency(site) for site in sites]
    return pa.table(
        {
            "site_id": pa.array(sites, pa.string()),
            "timezone": pa.array([settings.site_timezone(site) for site in sites], pa.string()),
            "currency": pa.array(currencies, pa.string()),
            "rate": pa.array([settings.rate_to_reporting(c) for c in currencies], pa.float64()),
        }
    )


def _check_attribution(files: list[Path], day: date) -> None:
    """A one-line error unless every file carries the current attribution."""
    stale = [path for path in files if needs_reattribution(path)]
    if stale:
        raise SessionflowError(
            f"{len(stale)} lake files read by {day}'s build predate the current attribution "
            f"rules (e.g. {stale[0]}): run `sessionflow reattribute`, then build again"
        )
