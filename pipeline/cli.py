"""`sessionflow <command>`: every command has --help and fails with a one-line reason."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from pipeline.config import Settings, load_settings
from pipeline.errors import SessionflowError

EXIT_NOT_RUNNING = 3  # as LSB init scripts report "program is not running"
EXIT_PARTIAL = 4  # the valid part was done; some input was rejected and reported
# Files and directories sessionflow creates (lake, marts, warehouse, report, state, salts)
# are its owner's alone; set before anything is written, inherited by the collector's
# workers, the local broker and Prefect's temporary server.
PRIVATE_UMASK = 0o077
# Commands that touch salts (or run where a collector may have left them): each destroys
# expired salts and killed processes' staging copies at start.
TIDIES_SECRET_FILES = frozenset({"collect", "produce", "import", "consume", "run", "backfill",
                                 "serve", "demo"})  # fmt: skip
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Cli(click.Group):
    """Turns errors into click's one-line `Error: ...` and exit code 1: sessionflow's own
    (a user's mistake, said as its cause), and any other as its type and first line.
    With --verbose, the traceback too."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except SessionflowError as exc:
            _log_detail(ctx)
            raise click.ClickException(_SECRETS.mask(str(exc))) from None
        except Exception as exc:
            _log_detail(ctx)
            first = (str(exc).splitlines() or [""])[0]
            hint = "" if _verbose(ctx) else " (run with --verbose for the detail)"
            raise click.ClickException(
                _SECRETS.mask(f"{type(exc).__name__}: {first}{hint}")
            ) from None


class _SecretMask(logging.Formatter):
    """A log formatter, and the CLI's error lines, with every secret the settings hold
    (api_secrets, the Kafka password) replaced by ***: whatever a library or an exception
    quotes, tracebacks included, no secret is printed."""

    MIN_CHARS = 4  # a shorter "secret" would mask digits everywhere, and hides nothing

    def __init__(self) -> None:
        super().__init__(_LOG_FORMAT)
        self.secrets: list[str] = []

    def know(self, secrets: list[str]) -> None:
        # Longest first: a secret that contains another is masked whole.
        wanted = {secret for secret in secrets if len(secret) >= self.MIN_CHARS}
        self.secrets = sorted(wanted, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.mask(super().format(record))


_SECRETS = _SecretMask()


def _verbose(ctx: click.Context) -> bool:
    return bool(ctx.params.get("verbose"))


def _quiet(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("quiet"))


def _log_detail(ctx: click.Context) -> None:
    if _verbose(ctx):
        logging.getLogger("sessionflow").exception("the error in detail")


def _config_path(ctx: click.Context) -> str | None:
    path: str | None = ctx.find_root().params.get("config_path")
    return path


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.find_root().obj
    return settings


@click.group(cls=_Cli)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: $SESSIONFLOW_CONFIG, else embedded defaults).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    help="No progress display (import, backfill, produce, generate); results still print.",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, quiet: bool) -> None:
    """sessionflow: privacy-friendly session analytics on Kafka, Parquet, DuckDB and Prefect."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format=_LOG_FORMAT, stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_SECRETS)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # kafka-python 3 warns whenever decoding a large fetch keeps its IO loop busy >100 ms;
    # on 2 cores under load that is routine, not a problem to report.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Prefect's API calls, one per line
    try:
        ctx.obj = settings = load_settings(config_path)
        _SECRETS.know(_secrets_of(settings))
        if ctx.invoked_subcommand in TIDIES_SECRET_FILES:
            _tidy_secret_files(settings)
    except SessionflowError as exc:
        raise click.ClickException(_SECRETS.mask(str(exc))) from None


def _secrets_of(settings: Settings) -> list[str]:
    """The secrets to mask: those in the settings, and the Kafka password from its file
    (an unprotected password file is refused here, at start)."""
    from pipeline.kafka.client import sasl_password

    password = sasl_password(settings.kafka)
    return settings.secret_values() + ([str.__str__(password)] if password else [])


def _tidy_secret_files(settings: Settings) -> None:
    from pipeline.privacy.salts import tidy_secret_files

    try:
        tidy_secret_files(settings, datetime.now(UTC))
    except OSError as exc:  # a salt directory this user may not change: say so, go on
        logging.getLogger(__name__).warning("cannot remove expired salts: %s", exc)


# -- broker ----------------------------------------------------------------------------


@cli.group()
def broker() -> None:
    """The local Apache Kafka broker (KRaft), started from Maven Central's jars."""


@broker.command("start")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait until ready.")
@click.pass_context
def broker_start(ctx: click.Context, timeout: float) -> None:
    """Start the local broker and wait until it answers Kafka requests."""
    # Imported here, as every command's own imports: kafka-python is no start-up cost
    # of `run daily`.
    from pipeline.kafka.broker import LocalBroker, kafka_version

    settings = _settings(ctx)
    if not settings.kafka.uses_local_broker:
        click.echo(
            f"KAFKA_BOOTSTRAP_SERVERS names a cluster ({settings.kafka.bootstrap}): "
            "no local broker started"
        )
        return
    local = LocalBroker.from_settings(settings)
    result = local.start(timeout_s=timeout)
    if result.already_running:
        click.echo(f"broker already running (pid {result.pid}) on {local.bootstrap}")
    else:
        click.echo(
            f"broker started (pid {result.pid}) on {local.bootstrap} in {result.seconds:.1f}s "
            f"(Apache Kafka {kafka_version()}, KRaft)"
        )


@broker.command("stop")
@click.pass_context
def broker_stop(ctx: click.Context) -> None:
    """Stop the local broker: SIGTERM, then SIGKILL if it does not exit in time."""
    from pipeline.kafka.broker import LocalBroker

    settings = _settings(ctx)
    if not settings.kafka.uses_local_broker:
        click.echo(f"using the cluster at {settings.kafka.bootstrap}: no local broker to stop")
        return
    click.echo(LocalBroker.from_settings(settings).stop())


@broker.command("status")
@click.pass_context
def broker_status(ctx: click.Context) -> None:
    """Report whether the broker runs and answers (exit 0), or not (exit 3)."""
    from pipeline.kafka.broker import BrokerState, LocalBroker, answers_kafka

    settings = _settings(ctx)
    if not settings.kafka.uses_local_broker:
        up = answers_kafka(settings.kafka)
        state = "answers" if up else "does not answer"
        click.echo(f"cluster at {settings.kafka.bootstrap} (KAFKA_BOOTSTRAP_SERVERS) {state}")
        ctx.exit(0 if up else EXIT_NOT_RUNNING)
    status = LocalBroker.from_settings(settings).status()
    click.echo(status.message)
    ctx.exit(0 if status.state is BrokerState.RUNNING else EXIT_NOT_RUNNING)


@broker.command("jars")
@click.pass_context
def broker_jars(ctx: click.Context) -> None:
    """Resolve Kafka's jars from Maven Central into the cache, and print where they are."""
    from pipeline.kafka.broker import LocalBroker, kafka_version

    jars = LocalBroker.from_settings(_settings(ctx)).resolve_jars()
    click.echo(f"Apache Kafka {kafka_version()} jars: {jars}")


# -- Prefect server ------------------------------------------------------------------


@cli.group()
def prefect() -> None:
    """The local Prefect server that `run`, `backfill`, `demo` and `serve` use while it runs
    (state, pid, url and log under <data_dir>/prefect-server/). Without it, or
    PREFECT_API_URL, each flow command starts Prefect's temporary server (~12 s)."""


@prefect.command("start")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=4200, show_default=True, type=int, help="Port to listen on.")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait until healthy.")
@click.pass_context
def prefect_start(ctx: click.Context, host: str, port: int, timeout: float) -> None:
    """Start the local Prefect server (idempotent) and wait until /api/health answers."""
    from pipeline.warehouse.prefect_server import LocalPrefectServer

    server = LocalPrefectServer.from_settings(_settings(ctx), host=host, port=port)
    result = server.start(timeout_s=timeout)
    state = "already running" if result.already_running else f"started in {result.seconds:.1f}s"
    click.echo(f"Prefect server {state} (pid {result.pid}): PREFECT_API_URL={result.api_url}")


@prefect.command("stop")
@click.pass_context
def prefect_stop(ctx: click.Context) -> None:
    """Stop the local Prefect server: SIGTERM, then SIGKILL if it does not exit in time."""
    from pipeline.warehouse.prefect_server import LocalPrefectServer

    click.echo(LocalPrefectServer.from_settings(_settings(ctx)).stop())


@prefect.command("status")
@click.pass_context
def prefect_status(ctx: click.Context) -> None:
    """Report whether the local Prefect server runs and is healthy (exit 0), or not (3)."""
    from pipeline.warehouse.prefect_server import LocalPrefectServer, ServerState

    status = LocalPrefectServer.from_settings(_settings(ctx)).status()
    click.echo(status.message)
    ctx.exit(0 if status.state is ServerState.RUNNING else EXIT_NOT_RUNNING)


def _use_prefect(ctx: click.Context) -> None:
    """Before Prefect is imported: the running server (PREFECT_API_URL, or the local one
    of `sessionflow prefect start`), else Prefect's temporary server, quietly."""
    from pipeline.warehouse.prefect_server import use_prefect_server

    use_prefect_server(_settings(ctx))


# -- topics ----------------------------------------------------------------------------


@cli.command()
@click.pass_context
def topics(ctx: click.Context) -> None:
    """Create the events and dead-letter topics if missing (idempotent)."""
    from pipeline.kafka.topics import ensure_topics

    for report in ensure_topics(_settings(ctx).kafka):
        click.echo(report.line())


# -- events in --------------------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Interface to listen on [collector.host].")
@click.option("--port", default=None, type=int, help="Port to listen on [collector.port].")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes (about one per core). Each has its own event buffer "
    "(collector.buffer_max_events each), Kafka producer and /health counters.",
)
@click.pass_context
def collect(ctx: click.Context, host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP collector (GA4 MP /mp/collect, PlainSignal /api/event, /t.js, /health).

    With --workers N, N processes share the port; on SIGTERM or Ctrl-C each flushes its
    buffer to Kafka (or spills it to data_dir/spill) before it exits. Cookie-free visitors
    crossing midnight keep yesterday's id only within the worker that saw them.
    """
    from pipeline.collector.app import serve
    from pipeline.errors import BrokerError
    from pipeline.kafka.topics import ensure_topics
    from pipeline.privacy.ids import SiteKeys
    from pipeline.privacy.salts import SaltStore

    settings = _settings(ctx)
    # An empty or unprotected salt or site key is refused now, not in a worker later.
    SaltStore.from_settings(settings).check(datetime.now(UTC))
    SiteKeys(settings.site_key_file)
    try:
        ensure_topics(settings.kafka, connect_timeout_s=5.0)
    except BrokerError as exc:
        # The collector buffers while Kafka is away; it must not refuse to start.
        logging.getLogger(__name__).warning("%s; starting anyway, events will buffer", exc)
    config_path = ctx.find_root().params.get("config_path")
    serve(
        settings,
        host or settings.collector.host,
        port or settings.collector.port,
        workers=workers,
        config_path=config_path,
    )


@cli.command()
@click.option("--synthetic", is_flag=True, help="Produce generated traffic.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="JSON Lines.")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1), help="Synthetic.")
@click.option("--events-per-day", default=5000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=42, show_default=True, type=int, help="Synthetic.")
@click.pass_context
def produce(
    ctx: click.Context,
    synthetic: bool,
    path: str | None,
    days: int,
    events_per_day: int,
    seed: int,
) -> None:
    """Produce canonical events into Kafka: --synthetic traffic, or --file F (JSON Lines).

    Every event is validated first; bad lines are reported with their line numbers and
    reasons, and the valid ones are produced."""
    from pipeline.dev.synthetic import produce_synthetic
    from pipeline.kafka.produce import produce_file
    from pipeline.kafka.topics import ensure_topics
    from pipeline.progress import lines_in, progress

    settings = _settings(ctx)
    if synthetic == (path is not None):
        raise click.UsageError("give exactly one of --synthetic or --file F")
    ensure_topics(settings.kafka)
    if path is not None:
        with progress("produce", lines_in(Path(path)), "lines", quiet=_quiet(ctx)) as meter:
            report = produce_file(settings, Path(path), click.echo, meter.advance)
    else:
        with progress("produce", None, "events", quiet=_quiet(ctx)) as meter:
            report = produce_synthetic(
                settings, days, events_per_day, seed, click.echo, meter.advance
            )
    click.echo(report.line())
    if report.rejected:
        ctx.exit(EXIT_PARTIAL)


@cli.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(1))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--events-per-day", default=5000, show_default=True, type=click.IntRange(1))
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day [default: DAYS days before today, so every day is complete].",
)
@click.pass_context
def generate(
    ctx: click.Context,
    days: int,
    out_dir: str,
    seed: int,
    events_per_day: int,
    start: datetime | None,
) -> None:
    """Write synthetic canonical events (events.jsonl) and marketing costs (costs.csv)."""
    from pipeline.dev.generator import GeneratorConfig, expected_events, write_dataset
    from pipeline.progress import progress

    settings = _settings(ctx)
    first_day = start.date() if start else datetime.now(UTC).date() - timedelta(days=days)
    config = GeneratorConfig(
        days=days,
        start=first_day,
        seed=seed,
        events_per_day=events_per_day,
        sites=tuple(settings.sites),
        currency=settings.currency,
    )
    expected = expected_events(config)
    with progress("generate", expected, "events", estimated=True, quiet=_quiet(ctx)) as meter:
        files = write_dataset(config, Path(out_dir), meter.advance)
    click.echo(
        f"wrote {files.events} events ({files.duplicates} duplicates, {files.late} late) to "
        f"{files.events_path} and {files.cost_rows} cost rows to {files.costs_path}"
    )


# -- the lake ---------------------------------------------------------------------------


@cli.command()
@click.option("--until-caught-up", is_flag=True, help="Exit once the group's lag is 0.")
@click.option(
    "--instance-id",
    default=None,
    help="Stable member id (Kafka static membership): a restarted consumer with the same "
    "id takes its partitions back at once instead of waiting for a rebalance.",
)
@click.pass_context
def consume(ctx: click.Context, until_caught_up: bool, instance_id: str | None) -> None:
    """Consume sessionflow.events into the sessionized Parquet lake."""
    from pipeline.kafka.topics import ensure_topics
    from pipeline.lake.consumer import LakeConsumer, install_signal_handlers

    settings = _settings(ctx)
    ensure_topics(settings.kafka)
    consumer = LakeConsumer(settings, instance_id=instance_id, say=click.echo)
    install_signal_handlers(consumer)
    totals = consumer.run(until_caught_up=until_caught_up)
    click.echo(f"{totals.line()} (lake: {settings.lake_dir}, rejects: {settings.kafka.dlq_topic})")


@cli.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def import_command(ctx: click.Context, path: Path) -> None:
    """Import historical canonical events (JSON Lines or Parquet) into the lake.

    Same validation, de-duplication and sessionizer as the consumer. Bad lines are listed
    with their line numbers and reasons; the valid ones land. Exits 4 if any were bad."""
    from pipeline.events.reasons import MAX_LISTED_REJECTS
    from pipeline.lake.importer import import_file
    from pipeline.progress import progress

    settings = _settings(ctx)
    total, unit = _records_in(path)
    with progress("import", total, unit, quiet=_quiet(ctx)) as meter:
        report = import_file(
            settings, path, meter.advance, lambda: meter.stage(IMPORT_AFTER_READING)
        )
    for line in report.reject_lines:
        click.echo(line)
    if report.rejected > MAX_LISTED_REJECTS:
        click.echo(f"... and {report.rejected - MAX_LISTED_REJECTS} more (see lake/rejected/)")
    click.echo(report.line())
    if report.rejected:
        ctx.exit(EXIT_PARTIAL)


IMPORT_AFTER_READING = "de-duplicating, sessionizing, writing the lake"


def _records_in(path: Path) -> tuple[int | None, str]:
    """What `import` counts its progress in, and how many: a Parquet file's rows (its
    footer says), a JSON Lines file's lines (one quick read). None where the file cannot
    be read that way: import itself then says why, in its words."""
    from pipeline.lake.importer import parquet_rows
    from pipeline.progress import lines_in

    if path.suffix == ".parquet":
        return (parquet_rows(path) if path.is_file() else None), "rows"
    return lines_in(path), "lines"


@cli.command()
@click.pass_context
def reattribute(ctx: click.Context) -> None:
    """Rewrite lake files written under older attribution rules with the current ones.

    Source, medium and channel group are derived at ingestion; files from before the
    current rules (or from before rules were stored) are updated in place, same rows."""
    from pipeline.lake.paths import LakeLayout
    from pipeline.lake.reattribution import reattribute_lake

    settings = _settings(ctx)
    done = reattribute_lake(LakeLayout(settings.lake_dir), settings.consumer_state_dir)
    click.echo(f"reattributed {done.rows} events in {done.files} lake files")


@cli.command()
@click.option(
    "--date",
    "dates",
    multiple=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="An event date to compact (repeatable).",
)
@click.option(
    "--before",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Compact every event date before this one [default: today, property time zone].",
)
@click.pass_context
def compact(ctx: click.Context, dates: tuple[datetime, ...], before: datetime | None) -> None:
    """Merge a date's small lake files into one (closed dates only, by default)."""
    from zoneinfo import ZoneInfo

    from pipeline.lake.compaction import compact_date
    from pipeline.lake.store import Lake

    settings = _settings(ctx)
    lake = Lake(settings.lake_dir, settings.timezone)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    limit = (before.date() if before else today).isoformat()
    given = [day.date().isoformat() for day in dates]
    chosen = given or [day for day in lake.layout.event_dates() if day < limit]
    for event_date in chosen:
        result = compact_date(settings, lake, event_date)
        if result.target is None:
            click.echo(f"{event_date}: nothing to compact")
        else:
            click.echo(
                f"{event_date}: {result.sources} files -> {result.target.name} ({result.rows} rows)"
            )


# -- flows ------------------------------------------------------------------------------


@cli.group()
def run() -> None:
    """Run a flow on demand (a temporary Prefect server when none is configured)."""


@run.command("daily")
@click.option(
    "--date",
    "day",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The target day [default: yesterday: the latest day ended in every site's zone].",
)
@click.option("--force", is_flag=True, help="Rebuild the target day even if up to date.")
@click.pass_context
def run_daily(ctx: click.Context, day: datetime | None, force: bool) -> None:
    """Build the target day unless up to date, the look-back days whose inputs changed
    (flows.lookback_days), and every built day whose costs changed; each day is printed
    with its reason. Atomic and idempotent; quality checks follow each build."""
    _settings(ctx)  # a bad config fails here, on one line, before Prefect starts
    _use_prefect(ctx)
    from flows.daily import daily_aggregation

    report = daily_aggregation(day.date() if day else None, _config_path(ctx), force)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        ctx.exit(EXIT_PARTIAL)


@cli.command()
@click.option("--start", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--end", required=True, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--force", is_flag=True, help="Rebuild days that are up to date too.")
@click.option(
    "--parallel", default=None, type=click.IntRange(1, 16), help="[flows.backfill_parallel]"
)
@click.pass_context
def backfill(
    ctx: click.Context, start: datetime, end: datetime, force: bool, parallel: int | None
) -> None:
    """Build the days of a range that are not up to date, as one Prefect flow: parallel,
    retried, resumable (a killed backfill, run again, builds exactly what is left)."""
    if end < start:
        raise click.BadParameter("--end is before --start")
    _settings(ctx)
    _use_prefect(ctx)
    from flows.daily import run_backfill
    from pipeline.progress import progress

    days = (end - start).days + 1
    with progress("backfill", days, "days", quiet=_quiet(ctx)) as meter:
        outcomes = run_backfill(
            start.date(),
            end.date(),
            force=force,
            parallel=parallel or _settings(ctx).flows.backfill_parallel,
            config_path=_config_path(ctx),
            day_done=lambda _: meter.advance(),
        )
    for outcome in outcomes:
        for line in outcome.lines():
            click.echo(line)
    if not all(check.ok for outcome in outcomes for check in outcome.checks):
        ctx.exit(EXIT_PARTIAL)


@cli.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Serve the scheduled daily deployment against the Prefect server at PREFECT_API_URL,
    or the local one (`sessionflow prefect start`) when it runs."""
    _use_prefect(ctx)
    from flows.deployments import serve_deployments

    serve_deployments(_settings(ctx), _config_path(ctx))


# -- BI access --------------------------------------------------------------------------


@cli.command()
@click.argument("sql")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="json is an array of row objects; csv and json stream every row.",
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds DuckDB may spend running the query and fetching its rows (a slow reader "
    "of the output does not count).",
)
@click.option(
    "--memory-limit",
    default=None,
    help="DuckDB's memory limit for the query, e.g. 1GB or 25% (nothing spills to disk) "
    "[default: [warehouse] memory_limit].",
)
@click.option(
    "--max-rows",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows the table format shows (it says how many it left out).",
)
@click.pass_context
def query(
    ctx: click.Context,
    sql: str,
    output: str,
    timeout: float,
    memory_limit: str | None,
    max_rows: int,
) -> None:
    """Run read-only SQL on the output tables (the published Parquet marts)."""
    from pipeline.warehouse.query import QueryLimits, write_query

    settings = _settings(ctx)
    limits = QueryLimits(
        timeout_s=timeout,
        memory_limit=memory_limit or settings.warehouse.memory_limit,
        max_rows=max_rows,
        threads=settings.warehouse.threads,
        memory_limit_from="--memory-limit" if memory_limit else "[warehouse] memory_limit",
    )
    try:
        write_query(settings.marts_dir, sql, output, sys.stdout.write, limits)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): the query stops, quietly. Python's advice: point
        # stdout at devnull so the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@cli.command()
@click.option(
    "--start",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First day [default: the first day in the marts].",
)
@click.option(
    "--end",
    default=None,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day [default: the last day in the marts].",
)
@click.option("--site", default=None, help="One site [default: all sites].")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write [default: <data_dir>/report.html].",
)
@click.pass_context
def report(
    ctx: click.Context,
    start: datetime | None,
    end: datetime | None,
    site: str | None,
    out: Path | None,
) -> None:
    """Write one self-contained HTML report (charts, offline) from the published marts."""
    from pipeline.warehouse.report import write_report

    written = write_report(
        _settings(ctx), out, start.date() if start else None, end.date() if end else None, site
    )
    click.echo(written.line())


# -- costs ------------------------------------------------------------------------------

MAX_LISTED_COST_ERRORS = 20


@cli.group()
def costs() -> None:
    """Marketing costs (GA4 cost-data-import style) in the warehouse."""


@costs.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--flow", "as_flow", is_flag=True, help="Run it as a Prefect flow run (rebuilds).")
@click.option("--rebuild", is_flag=True, help="Rebuild the built days it touched, at once.")
@click.pass_context
def costs_load(ctx: click.Context, path: Path, as_flow: bool, rebuild: bool) -> None:
    """Load a CSV or Parquet cost file. It replaces exactly the (date, site, source,
    medium, campaign) keys it holds, atomically, as GA4's cost import does: other
    campaigns stay. Source, medium and campaign are matched trimmed and in lower case; a
    missing campaign is "(not set)". If any row is bad, every bad row is listed with its
    line number and nothing is loaded. The built days it touches become stale: the next
    `run daily` rebuilds them (or --rebuild, now)."""
    from pipeline.warehouse.costs import CostLoadError, load_costs
    from pipeline.warehouse.lock import hold_warehouse

    settings = _settings(ctx)
    if as_flow:
        _use_prefect(ctx)
        from flows.costs import cost_loading

        click.echo(cost_loading(str(path), _config_path(ctx)))
        return
    try:
        with hold_warehouse(settings, f"costs load {path}", click.echo):
            loaded = load_costs(settings, path)
    except CostLoadError as failure:
        for error in failure.errors[:MAX_LISTED_COST_ERRORS]:
            click.echo(error.line(), err=True)
        if len(failure.errors) > MAX_LISTED_COST_ERRORS:
            click.echo(f"... and {len(failure.errors) - MAX_LISTED_COST_ERRORS} more", err=True)
        raise
    click.echo(loaded.line())
    if not loaded.dates:
        return
    if rebuild:
        _use_prefect(ctx)
        from flows.daily import rebuild_days

        rebuilt = rebuild_days(list(loaded.dates), _config_path(ctx))
        for outcome in rebuilt:
            for line in outcome.lines():
                click.echo(line)
        if not all(check.ok for outcome in rebuilt for check in outcome.checks):
            ctx.exit(EXIT_PARTIAL)
    else:
        click.echo(
            f"{len(loaded.dates)} days' costs changed ({loaded.dates[0]}..{loaded.dates[-1]}); "
            "the next `sessionflow run daily` rebuilds the built ones (or load with --rebuild)"
        )


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Per site: the newest event in the lake, consumer lag; days built, stale ones and
    why; the loaded costs' date range."""
    from pipeline.kafka.lag import consumer_lag
    from pipeline.lake.paths import LakeLayout
    from pipeline.lake.store import newest_events, sessionization_drift
    from pipeline.sessions.sessionizer import SessionRules
    from pipeline.warehouse.status import warehouse_status

    settings = _settings(ctx)
    newest = newest_events(settings)
    for site, (latest, count) in newest.items():
        click.echo(f"lake {site}: {count} events, newest {latest.isoformat()}")
    if not newest:
        click.echo(f"lake: no events yet ({settings.lake_dir})")
    lag = consumer_lag(settings)
    click.echo(
        f"consumer lag: {lag} records" if lag is not None else "consumer lag: no broker answered"
    )
    for line in warehouse_status(settings).lines():
        click.echo(line)
    drift = sessionization_drift(
        LakeLayout(settings.lake_dir), SessionRules.from_settings(settings)
    )
    if drift:
        click.echo(drift)


# -- demo ------------------------------------------------------------------------------


@cli.command()
@click.option("--events-per-day", default=5000, show_default=True, type=click.IntRange(1))
@click.pass_context
def demo(ctx: click.Context, events_per_day: int) -> None:
    """Run the whole product end to end on local defaults: broker, collector, 3 days of
    synthetic traffic, consumer, costs (today's late), the daily flow, tables, report."""
    _use_prefect(ctx)
    from pipeline.dev.demo import run_demo

    run_demo(_settings(ctx), _config_path(ctx), events_per_day, click.echo)


# One example per command, shown at the end of its --help (tests check every command has
# one). Exit codes: README.md, "The command line".
EXAMPLES = {
    "backfill": "sessionflow backfill --start 2026-11-01 --end 2026-11-30",
    "broker jars": "sessionflow broker jars",
    "broker start": "sessionflow broker start --timeout 120",
    "broker status": "sessionflow broker status || echo 'not running'",
    "broker stop": "sessionflow broker stop",
    "collect": "sessionflow collect --host 0.0.0.0 --port 8080",
    "compact": "sessionflow compact --before 2026-11-30",
    "consume": "sessionflow consume --until-caught-up",
    "costs load": "sessionflow costs load --rebuild costs-2026-11.csv",
    "demo": "sessionflow demo",
    "generate": "sessionflow generate --days 3 --out synthetic/ --seed 7",
    "import": "sessionflow import events-2026-10.jsonl",
    "prefect start": "sessionflow prefect start --port 4200  # then: sessionflow run daily",
    "prefect status": "sessionflow prefect status || sessionflow prefect start",
    "prefect stop": "sessionflow prefect stop",
    "produce": "sessionflow produce --file events.jsonl",
    "query": (
        'sessionflow query --format csv "SELECT date, sessions, cost_per_session '
        'FROM daily_site_summary ORDER BY date"'
    ),
    "reattribute": "sessionflow reattribute",
    "report": "sessionflow report --start 2026-11-01 --end 2026-11-30 --out report.html",
    "run daily": "sessionflow run daily --date 2026-11-30",
    "serve": "PREFECT_API_URL=http://127.0.0.1:4200/api sessionflow serve",
    "status": "sessionflow status",
    "topics": "sessionflow topics",
}


def commands(group: click.Group = cli, prefix: str = "") -> dict[str, click.Command]:
    """Every command by its full name ("run daily"), groups left out."""
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found |= commands(command, path)
        else:
            found[path] = command
    return found


for _name, _command in commands().items():
    if _name in EXAMPLES:
        # "\b": click keeps the example's line as written.
        _command.epilog = f"\b\nExample:\n  {EXAMPLES[_name]}"


def main() -> None:
    os.umask(PRIVATE_UMASK)
    # No telemetry leaves this machine (Prefect's anonymous start-up analytics included);
    # its write at server start also raced the flow's own on the temporary SQLite store.
    # (pipeline.warehouse.prefect_server.QUIET_PREFECT, written out: that module loads lazily.)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client-side usage notice too
    # Prefect's temporary server gives itself 20 s to start; a loaded 2-core machine
    # (migrations on a fresh SQLite store) can take longer.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    try:
        cli(prog_name="sessionflow")
    except SystemExit as done:
        if "prefect" not in sys.modules:
            raise
        _exit_now(done.code)


def _exit_now(code: object) -> None:
    """Exit a process that ran Prefect without the interpreter's teardown: collecting the
    thousands of modules and objects Prefect loaded takes 0.5-1.5 s after the work is
    done. What a normal exit runs first still runs, in the interpreter's order: the
    threading shutdown (Prefect drains its event worker in a threading exit hook, so the
    last task runs reach the server), then the atexit handlers (logs, and logging's flush)."""
    import atexit
    import threading

    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    with contextlib.suppress(BrokenPipeError):  # a reader that went away (`| head`)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
