"""`sessionflow demo` (`make demo`): the whole product, end to end, on embedded defaults.

 1. set-up: the data directory and the settings in force;
 2. the local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS names a cluster) and topics;
 3. the HTTP collector, `sessionflow collect` on a free port, as its own process;
 4. three days of synthetic traffic (today and the two days before, within GA4's 72 h of
    back-dating), sent as clients send it (pipeline.dev.traffic): GA4 visitors as
    Measurement Protocol requests with `timestamp_micros`; cookie-free visitors of past
    days through the producer SDK, today's as the tracker's `/api/event` beacons;
 5. the consumer until caught up: validation, de-duplication, sessions, the Parquet lake;
 6. the generated marketing costs, all but today's;
 7. the daily flow for each day, in this process: on the running Prefect server
    (`sessionflow prefect start`, or PREFECT_API_URL), else on a temporary one started
    once;
 8. today's costs, arriving late, and the daily flow again: it rebuilds today, and says
    why;
 9. the daily site summary; 10. the top campaigns by cost per session and by session
    value; 11. the HTML report (`sessionflow report`); 12. where to go from here.

Every run sends a new batch of traffic (new visitors): the tables grow by exactly that
batch, which step 9 shows. Re-sent events inside a batch (retried requests) are dropped
by de-duplication; costs are loaded again and replace their days' rows, as a cost import
does. The collector is stopped at the end; the broker keeps running (`make broker-stop`).
"""

from __future__ import annotations

import csv
import http.client
import json
import logging
import os
import random
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import click

from pipeline.config import Settings
from pipeline.dev.generator import (
    COST_COLUMNS,
    GeneratedFiles,
    GeneratorConfig,
    second_currency,
    write_dataset,
)
from pipeline.dev.traffic import COUNTRY_HEADER, Tally, TrafficSender
from pipeline.errors import SessionflowError
from pipeline.kafka.broker import LocalBroker, kafka_version
from pipeline.kafka.lag import consumer_lag
from pipeline.kafka.topics import ensure_topics
from pipeline.lake.consumer import LakeConsumer
from pipeline.safe_text import for_terminal
from pipeline.warehouse.costs import load_costs
from pipeline.warehouse.lock import hold_warehouse
from pipeline.warehouse.query import run_query

if TYPE_CHECKING:  # flows.daily imports Prefect, which _quiet() configures first
    from flows.daily import DayOutcome, RunReport

Say = Callable[[str], None]

DAYS: Final = 3  # today and the two days before: all within GA4's 72 h of back-dating
TOP_CAMPAIGNS: Final = 5
_INDENT: Final = " " * 17  # under a step's text
_WIDTH: Final = 100  # the longest line, tables aside
# Checks the demo's own data can flag, each with why, in a line of its own under the check
# (the names are flows/quality.py's and checks/quality_checks.sql's). Any other flagged
# check is a finding.
_RANDOM_COSTS: Final = "expected now and then: a small campaign's random traffic can miss a day"
EXPECTED_FLAGS: Final = {
    "amounts in the reporting currency": "expected: older purchases in another currency; "
    "[currency_rates] converts them",
    "costs without sessions": _RANDOM_COSTS,
    "share of cost matched to sessions": _RANDOM_COSTS,
}
_COLLECTOR_START_S: Final = 60.0
_DELIVERY_WAIT_S: Final = 120.0


@dataclass(frozen=True)
class DemoOutcome:
    days: list[date]
    sent_page_views: int
    page_views_before: int
    page_views_after: int
    report: Path


def run_demo(
    settings: Settings, config_path: str | None, events_per_day: int, say: Say
) -> DemoOutcome:
    _quiet()
    screen = _Screen(say)
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    sites = ", ".join(settings.sites)
    say(f"sessionflow demo: {days[0]}..{today} of a shop's traffic ({sites}), end to end")

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    source = f"config {config_path}" if config_path else "embedded defaults"
    screen.step(
        1,
        "set-up",
        f"data in {settings.data_dir}/ ({source}: {settings.currency}, {settings.timezone})",
    )
    # The traffic pays in a second currency only when the settings convert it: amounts
    # without a rate would be left out of the sums and flagged by a quality check.
    other_currency = second_currency(settings.currency)
    other_rate = settings.currency_rates.get(other_currency)
    screen.more(
        f"purchases in {settings.currency} only (set [currency_rates] {other_currency} "
        f"for some in {other_currency} too)"
        if other_rate is None
        else f"purchases in {settings.currency} and {other_currency} "
        f"([currency_rates] {other_currency} = {other_rate})"
    )
    _broker_and_topics(settings, screen)
    page_views_before = _page_views(settings, days)

    with tempfile.TemporaryDirectory(prefix="sessionflow-demo-") as scratch:
        generated = write_dataset(
            GeneratorConfig(
                days=DAYS,
                start=days[0],
                seed=random.SystemRandom().getrandbits(32),  # a new batch of visitors
                events_per_day=events_per_day,
                sites=tuple(settings.sites),
                currency=settings.currency,
                other_currency_purchases=other_rate is not None,
            ),
            Path(scratch) / "generated",
        )
        with _collector(settings, config_path, Path(scratch) / "collector.log") as address:
            host, port, pid = address
            screen.step(3, "collector", f"http://{host}:{port} (pid {pid}), behind a demo proxy")
            tally, today_share = _send(settings, generated, (host, port), now, days, screen)
            _wait_until_delivered(host, port)
        screen.more("the collector has handed every event to Kafka and stopped")

        _consume(settings, tally, screen)
        early, late = _split_costs(generated.costs_path, today, today_share, Path(scratch))
        _load_costs(settings, early, screen, 6, "costs", "today's come late (8)")
        reports = _build_days(config_path, days, screen)
        summary_before = _site_days(settings, [today])
        late_reports = _late_costs(settings, config_path, late, today, screen)
        _cost_change(settings, today, summary_before, screen)
        _print_checks([*reports, *late_reports], screen)

    page_views_after = _summary(settings, days, screen)
    _explain_growth(page_views_before, tally.page_views, page_views_after, screen)
    _campaigns(settings, days, screen)
    report = _write_report(settings)
    screen.step(11, "report", str(report))
    _next_steps(settings, report, screen)
    return DemoOutcome(days, tally.page_views, page_views_before, page_views_after, report)


# -- output -------------------------------------------------------------------------------


class _Screen:
    def __init__(self, say: Say) -> None:
        self.say = say

    def step(self, number: int, title: str, text: str = "") -> None:
        self.say(f"{number:>2}  {title:<12} {text}".rstrip())

    def more(self, text: str) -> None:
        self.say(_INDENT + text)

    def table(
        self, header: list[str], rows: list[list[str]], widths: list[int] | None = None
    ) -> None:
        """Columns sized to fit (or to `widths`); the first left-aligned, numbers right."""
        widths = widths or _widths([header, *rows])
        for row in [header, *rows]:
            cells = [
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            self.say("    " + "  ".join(cells).rstrip())


def _widths(rows: list[list[str]]) -> list[int]:
    return [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]


def _progress(length: int, label: str) -> AbstractContextManager[Any]:
    """A progress bar on a terminal; elsewhere (pipes, logs, tests) nothing at all."""
    if length <= 0 or not sys.stdout.isatty():
        return nullcontext(_NoBar())
    return click.progressbar(length=length, label=_INDENT + label, width=32)


class _NoBar:
    def update(self, steps: int) -> None:
        pass


def _quiet() -> None:
    """A product's output, not a log: our loggers, Kafka's and Prefect's say only what is
    wrong (`sessionflow -v demo` keeps everything)."""
    if logging.getLogger().level <= logging.DEBUG:
        return
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # read when Prefect loads
    # Prefect's client notes on a terminal that it may send usage data: none leaves here.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    for name in ("pipeline", "flows", "prefect", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # A consumer rejoining its group warns about metadata it fetches a moment later.
    logging.getLogger("kafka").setLevel(logging.ERROR)


def _amount(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# -- 2: the broker ------------------------------------------------------------------------


def _broker_and_topics(settings: Settings, screen: _Screen) -> None:
    if settings.kafka.uses_local_broker:
        local = LocalBroker.from_settings(settings)
        started = local.start()
        how = "running" if started.already_running else f"started in {started.seconds:.1f}s"
        text = (
            f"{how} on {local.bootstrap} (Apache Kafka {kafka_version()}, KRaft, pid {started.pid})"
        )
    else:
        text = f"the cluster at {settings.kafka.bootstrap} (KAFKA_BOOTSTRAP_SERVERS)"
    created = [topic.name for topic in ensure_topics(settings.kafka) if topic.created]
    screen.step(2, "Kafka", text)
    if created:
        screen.more(f"created the topics {', '.join(created)}")


# -- 3, 4: the collector and the traffic -----------------------------------------------------


@contextmanager
def _collector(
    settings: Settings, config_path: str | None, log_path: Path
) -> Iterator[tuple[str, int, int]]:
    """`sessionflow collect` on a free port, in a process of its own, stopped on exit (its
    shutdown hands anything unsent to Kafka, or to data/spill/)."""
    host, port = "127.0.0.1", _free_port()
    config = ["--config", config_path] if config_path else []
    # Behind a proxy that passes the visitor's address and country, as a CDN does.
    env = {
        **os.environ,
        # The traffic sender, on loopback, stands in for that proxy.
        "SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES": '["127.0.0.1"]',
        "SESSIONFLOW_PRIVACY__COUNTRY_HEADER": COUNTRY_HEADER,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *config, "collect", "--host", host,
             "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        _wait_until_ready(process, host, port, log_path)
        yield host, port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _health(host: str, port: int) -> dict[str, Any] | None:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        body: dict[str, Any] = json.loads(response.read())
        return body
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()


def _wait_until_ready(process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> None:
    deadline = time.monotonic() + _COLLECTOR_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise SessionflowError(f"the collector did not start: {' '.join(tail) or 'no output'}")
        if _health(host, port) is not None:
            return
        time.sleep(0.2)
    raise SessionflowError(f"the collector did not answer on {host}:{port} in time")


def _wait_until_delivered(host: str, port: int) -> None:
    """Until the collector's buffer is empty: every accepted event acknowledged by Kafka."""
    deadline = time.monotonic() + _DELIVERY_WAIT_S
    health: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        health = _health(host, port)
        if (
            health is not None
            and health["pending"] == 0
            and health["delivered"] >= health["outcomes"].get("accepted", 0)
        ):
            return
        time.sleep(0.2)
    pending = health["pending"] if health else "some"
    raise SessionflowError(f"the collector still holds {pending} events for Kafka")


def _send(
    settings: Settings,
    generated: GeneratedFiles,
    collector: tuple[str, int],
    now: datetime,
    days: list[date],
    screen: _Screen,
) -> tuple[Tally, float]:
    """Every generated event to its client's way in; returns the tally and the share of
    today's traffic that has already happened (today's costs are that share of a day's)."""
    screen.step(
        4,
        "traffic",
        f"{generated.events:,} events generated for {DAYS} days; today's only so far",
    )
    sender = TrafficSender(settings, *collector, now, days[0])
    with _progress(generated.events, "sending") as bar, generated.events_path.open("rb") as lines:
        try:
            for line in lines:
                sender.send(json.loads(line))
                bar.update(1)
        except BaseException:
            sender.abandon()
            raise
    sender.close()
    tally = sender.tally
    for day, counts in sorted(tally.days.items()):
        if day < sender.today:
            ways = f"SDK {counts.sdk:,} + /mp/collect {counts.ga4:,} (back-dated)"
        else:
            ways = f"/api/event {counts.browser:,} + /mp/collect {counts.ga4:,}"
            ways += f" + SDK {counts.sdk:,}" if counts.sdk else ""
            ways += f" (so far: {now.astimezone(sender.zone):%H:%M})"
        screen.more(f"{day}  {counts.events:>7,} events: {ways}")
    screen.more(
        f"{tally.events:,} events ({tally.page_views:,} page views) in {tally.requests:,} "
        f"requests; {tally.repeats:,} sent twice (retries); {tally.rejected} rejected"
    )
    if tally.rejected:
        reasons = ", ".join(f"{reason} {n}" for reason, n in tally.reasons.most_common(3))
        screen.more(f"rejected: {reasons}")
    if tally.too_old:
        screen.more(f"{tally.too_old} events older than the collector's 72 h were not sent")
    if tally.before:
        screen.more(f"{tally.before} events of the eve of {days[0]} were not sent")
    return tally, tally.today_share


# -- 5: the consumer --------------------------------------------------------------------------


class _CountingConsumer(LakeConsumer):
    """The lake consumer, reporting each polled batch to a progress bar."""

    def __init__(self, settings: Settings, on_records: Callable[[int], None]) -> None:
        super().__init__(settings, instance_id="demo", say=lambda line: None)
        self._on_records = on_records

    def _take(self, tp: Any, records: list[Any]) -> None:
        super()._take(tp, records)
        self._on_records(len(records))


def _consume(settings: Settings, tally: Tally, screen: _Screen) -> None:
    waiting = consumer_lag(settings) or 0
    screen.step(5, "consumer", f"{waiting:,} records in Kafka -> the sessionized Parquet lake")
    with _progress(waiting, "consuming") as bar:
        totals = _CountingConsumer(settings, bar.update).run(until_caught_up=True)
    expected = "as sent" if totals.duplicates == tally.repeats else f"{tally.repeats:,} sent"
    screen.more(
        f"caught up: {totals.written:,} events in the lake, {totals.duplicates:,} repeats "
        f"dropped ({expected}), {totals.rejected} rejected"
    )


# -- 6, 8: costs --------------------------------------------------------------------------------


def _split_costs(
    costs_csv: Path, today: date, today_share: float, scratch: Path
) -> tuple[Path, Path]:
    """The generated costs as two files: the days before today, and today's so far (the
    generator's full day, scaled to the share of today's traffic that has happened)."""
    with costs_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    early = [row for row in rows if row["date"] < today.isoformat()]
    late = [_scaled(row, today_share) for row in rows if row["date"] == today.isoformat()]
    paths = scratch / f"costs-until-{today - timedelta(days=1)}.csv", scratch / f"costs-{today}.csv"
    for path, chosen in zip(paths, (early, late), strict=True):
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(COST_COLUMNS), lineterminator="\n")
            writer.writeheader()
            writer.writerows(chosen)
    return paths


def _scaled(row: dict[str, str], share: float) -> dict[str, str]:
    scaled = dict(row)
    scaled["cost"] = f"{Decimal(row['cost']) * Decimal(str(round(share, 4))):.2f}"
    for column in ("clicks", "impressions"):
        if row.get(column):
            scaled[column] = str(round(int(row[column]) * share))
    return scaled


def _load_costs(
    settings: Settings, path: Path, screen: _Screen, number: int, title: str, note: str
) -> None:
    with hold_warehouse(settings, f"demo: costs load {path.name}", screen.more):
        loaded = load_costs(settings, path)
    span = (
        f"{loaded.first_date}"
        if loaded.first_date == loaded.last_date
        else f"{loaded.first_date}..{loaded.last_date}"
    )
    total = f"{_csv_total(path):,.2f} {settings.currency}"
    screen.step(number, title, f"{loaded.rows_loaded} cost rows for {span}, {total}; {note}")


def _csv_total(path: Path) -> float:
    with path.open(newline="") as handle:
        return float(sum(Decimal(row["cost"]) for row in csv.DictReader(handle)))


def _late_costs(
    settings: Settings, config_path: str | None, late: Path, today: date, screen: _Screen
) -> list[RunReport]:
    from flows.daily import daily_aggregation

    _load_costs(settings, late, screen, 8, "late costs", "the daily flow runs again")
    report: RunReport = daily_aggregation(today, config_path, False)
    rebuilt = [outcome for outcome in report.days if outcome.built]
    kept = [outcome for outcome in report.days if not outcome.built]
    for outcome in rebuilt:
        screen.more(f"{outcome.day}  rebuilt: {outcome.reason}")
    if kept:
        listed = ", ".join(str(outcome.day) for outcome in kept)
        screen.more(f"{listed}  up to date: not rebuilt")
    return [report]


def _cost_change(
    settings: Settings, today: date, before: dict[date, dict[str, float]], screen: _Screen
) -> None:
    after = _site_days(settings, [today]).get(today, {})
    was, now = before.get(today, {}), after
    screen.more(
        f"{today}: cost {_amount(was.get('cost'))} -> {_amount(now.get('cost'))}, "
        f"cost per session {_amount(_per_session(was, 'cost'))} -> "
        f"{_amount(_per_session(now, 'cost'))}"
    )


# -- 7: the daily flow ---------------------------------------------------------------------------


def _build_days(config_path: str | None, days: list[date], screen: _Screen) -> list[RunReport]:
    """`run daily --date D` for each day, as Prefect flow runs of this one process: on
    the running server, or a temporary one that starts once, with the first."""
    from flows.daily import daily_aggregation

    # The CLI has exported the running server's URL, if any (pipeline.warehouse.prefect_server).
    server = os.environ.get("PREFECT_API_URL")
    where = f"on {server}" if server else "(its temporary server starts first)"
    screen.step(7, "daily flow", f"Prefect flow runs for {days[0]}..{days[-1]} {where}")
    reports: list[RunReport] = []
    with _progress(len(days), "building") as bar:
        for day in days:
            reports.append(daily_aggregation(day, config_path, False))
            bar.update(1)
    seen: set[date] = set()
    for report in reports:
        for outcome in report.days:
            if outcome.built and outcome.day not in seen:
                seen.add(outcome.day)
                screen.more(f"{outcome.day}  built: {outcome.reason} ({_built_rows(outcome)})")
    return reports


def _built_rows(outcome: DayOutcome) -> str:
    return f"{outcome.rows.get('sessions', 0):,} sessions"


_CHECK_MAX_LINES = 3


def _print_checks(reports: list[RunReport], screen: _Screen) -> None:
    passed = 0
    flagged: dict[str, list[tuple[date | None, str]]] = defaultdict(list)
    for report in reports:
        for outcome in report.days:
            for check in outcome.checks:
                if check.ok:
                    passed += 1
                else:
                    flagged[check.name].append((outcome.day, check.detail))
        for check in report.checks:
            if check.ok:
                passed += 1
            else:
                flagged[check.name].append((None, check.detail))
    if not flagged:
        screen.more(f"quality checks after each build: all {passed} passed")
        return
    count = sum(len(found) for found in flagged.values())
    screen.more(f"quality checks after each build: {passed} passed, {count} flagged:")
    for name, found in flagged.items():
        days = sorted({str(day) for day, _ in found if day is not None})
        where = f" ({', '.join(days)})" if days else ""
        text = for_terminal(f"{name}{where}: {found[0][1]}")
        # At most a few lines each (a long list of campaigns is cut short), so the demo
        # fits a screen; the flow's quality artifact in Prefect has every name.
        wrapped = textwrap.wrap(
            text, _WIDTH - len(_INDENT) - 2, subsequent_indent="  ",
            max_lines=_CHECK_MAX_LINES, placeholder=" ...",
        )  # fmt: skip
        for line in wrapped:
            screen.more(f"  {line}")
        if name in EXPECTED_FLAGS:
            screen.more(f"    ({EXPECTED_FLAGS[name]})")


# -- 9, 10: the tables ----------------------------------------------------------------------------


def _mart_rows(settings: Settings, table: str) -> list[dict[str, Any]]:
    try:
        result = run_query(settings.marts_dir, f"SELECT * FROM {table}")
    except SessionflowError:
        return []  # not built yet
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


_ADDITIVE: Final = (
    "sessions",
    "users",
    "pageviews",
    "engaged_sessions",
    "revenue",
    "conversion_value",
    "cost",
)


def _site_days(settings: Settings, days: list[date]) -> dict[date, dict[str, float]]:
    """daily_site_summary's additive columns per day, summed over the sites."""
    totals: dict[date, dict[str, float]] = {}
    for row in _mart_rows(settings, "daily_site_summary"):
        day = row["date"]
        if day in days:
            into = totals.setdefault(day, dict.fromkeys(_ADDITIVE, 0.0))
            for column in _ADDITIVE:
                into[column] += float(row[column] or 0)
    return totals


def _per_session(values: dict[str, float], column: str) -> float | None:
    if not values:
        return None
    return _ratio(values[column], values["sessions"])


def _page_views(settings: Settings, days: list[date]) -> int:
    return int(sum(values["pageviews"] for values in _site_days(settings, days).values()))


def _summary(settings: Settings, days: list[date], screen: _Screen) -> int:
    per_day = _site_days(settings, days)
    screen.step(9, "daily site summary", f"(daily_site_summary, amounts in {settings.currency})")
    header = [
        "date", "sessions", "users", "page views", "engaged", "revenue", "cost",
        "cost/session", "value/session",
    ]  # fmt: skip
    rows = []
    total = dict.fromkeys(_ADDITIVE, 0.0)
    for day in days:
        values = per_day.get(day, dict.fromkeys(_ADDITIVE, 0.0))
        rows.append(_summary_row(str(day), values, users=f"{values['users']:,.0f}"))
        for column in _ADDITIVE:
            total[column] += values[column]
    rows.append(_summary_row("total", total, users="-"))  # users are not additive over days
    screen.table(header, rows)
    return int(total["pageviews"])


def _summary_row(label: str, values: dict[str, float], users: str) -> list[str]:
    sessions = values["sessions"]
    value = values["revenue"] + values["conversion_value"]
    return [
        label,
        f"{sessions:,.0f}",
        users,
        f"{values['pageviews']:,.0f}",
        "-" if not sessions else f"{values['engaged_sessions'] / sessions:.0%}",
        _amount(values["revenue"]),
        _amount(values["cost"]),
        _amount(_ratio(values["cost"], sessions)),
        _amount(_ratio(value, sessions)),
    ]


def _explain_growth(before: int, sent: int, after: int, screen: _Screen) -> None:
    line = f"page views in the tables: {after:,} = {before:,} before this run + {sent:,} sent by it"
    if after == before + sent:
        screen.say(f"    {line}: nothing counted twice")
    else:
        screen.say(
            f"    page views in the tables: {after:,}, but {before:,} before this run + "
            f"{sent:,} sent by it make {before + sent:,}"
        )


def _campaigns(settings: Settings, days: list[date], screen: _Screen) -> None:
    totals: dict[tuple[str, str, str], dict[str, float]] = {}
    for row in _mart_rows(settings, "daily_cost_per_session"):
        if row["date"] not in days:
            continue
        key = (str(row["source"]), str(row["medium"]), str(row["campaign"]))
        into = totals.setdefault(key, {"cost": 0.0, "sessions": 0.0, "value": 0.0})
        into["cost"] += float(row["cost"] or 0)
        into["sessions"] += float(row["sessions"] or 0)
        into["value"] += float(row["revenue"] or 0) + float(row["conversion_value"] or 0)
    paid = {key: values for key, values in totals.items() if values["cost"] and values["sessions"]}
    screen.step(10, "top campaigns", f"{days[0]}..{days[-1]}, paid campaigns ({settings.currency})")
    header = ["source / medium / campaign", "sessions", "cost", "cost/session", "value/session"]
    tables: list[tuple[str, list[list[str]]]] = []
    for title, measure in (("by cost per session", "cost"), ("by session value", "value")):
        ranked = sorted(
            paid.items(), key=lambda item: (-item[1][measure] / item[1]["sessions"], item[0])
        )
        rows = [
            [
                " / ".join(key),
                f"{values['sessions']:,.0f}",
                _amount(values["cost"]),
                _amount(values["cost"] / values["sessions"]),
                _amount(values["value"] / values["sessions"]),
            ]
            for key, values in ranked[:TOP_CAMPAIGNS]
        ]
        tables.append((title, rows))
    widths = _widths([header, *(row for _, rows in tables for row in rows)])
    for title, rows in tables:
        screen.say(f"  {title}:")
        screen.table(header, rows, widths)


# -- 11, 12 ------------------------------------------------------------------------------------


def _write_report(settings: Settings) -> Path:
    """`sessionflow report`'s HTML file, over every day the marts hold."""
    from pipeline.warehouse.report import write_report

    return write_report(settings).path


def _next_steps(settings: Settings, report: Path, screen: _Screen) -> None:
    screen.step(12, "next", f"open the report:  {report.resolve().as_uri()}")
    screen.more('query the tables: .venv/bin/sessionflow query "SELECT * FROM daily_site_summary"')
    if settings.kafka.uses_local_broker:
        screen.more("stop the broker:  make broker-stop  (the demo's collector has stopped)")
    else:
        screen.more("nothing to stop: the demo's collector has stopped; the cluster is yours")
    screen.more("run it again:     make demo  (a new batch of traffic; nothing counted twice)")


__all__ = ["DemoOutcome", "run_demo"]
