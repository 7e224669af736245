"""`sessionflow report`: one self-contained HTML file of charts over the published marts.

The numbers come from the marts `sessionflow query` reads, one view per table made as
`query` makes them (`query.mart_globs`, `query.mart_select`), never from the warehouse
file, so a report can be made while a flow runs. The charts are plotly's, with plotly.js
embedded once in the page: the file opens offline and loads nothing from the network
(its Content-Security-Policy forbids any fetch; no CDN, no MathJax, no web fonts).

Revenue per session is labelled Low / Average / Strong against the site's own trailing
median: see `band` and `BANDS_DEFINITION`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import os
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
from plotly.subplots import make_subplots

from pipeline.config import Settings
from pipeline.duckdb_connections import connect, memory_bounded
from pipeline.errors import SessionflowError
from pipeline.safe_text import for_plotly, for_terminal
from pipeline.warehouse.query import mart_globs, mart_select

# -- revenue per session bands (Low / Average / Strong against the median) ----

TRAILING_DAYS = 28  # the median is over the site's days D-28 .. D-1 (not D itself)
MIN_HISTORY_DAYS = 7  # fewer earlier days with sessions than this: no band yet
LOW_BELOW = 0.8  # revenue per session < 0.8 x median: Low
STRONG_ABOVE = 1.2  # revenue per session > 1.2 x median: Strong; in between: Average
LOW, AVERAGE, STRONG, NO_BAND = "Low", "Average", "Strong", "n/a"
BAND_COLOURS = {LOW: "#d62728", AVERAGE: "#ff9f1c", STRONG: "#2ca02c", NO_BAND: "#9e9e9e"}
BANDS_DEFINITION = (
    f"Each day's revenue per session (revenue / sessions, from daily_site_summary) is "
    f"compared with the median of the same site's daily revenue per session over the "
    f"{TRAILING_DAYS} days before it (days with sessions only; days before the report's "
    f"range count too). Low: below {LOW_BELOW} times that median. Strong: above "
    f"{STRONG_ABOVE} times it. Average: from {LOW_BELOW} to {STRONG_ABOVE} times it, "
    f"inclusive. A day with fewer than {MIN_HISTORY_DAYS} earlier days of history, or "
    f"without sessions, has no band (n/a)."
)

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TOP_COUNTRIES = 15
DAILY_TICKS = 8  # at most this many date ticks on a daily axis
DAY_MS = 86_400_000  # plotly's dtick on a date axis is in milliseconds
SITE_COLOURS = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")
# plotly's own options: no logo link, no cloud, nothing that reaches out.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False}


# The browser enforces "offline" and "data as text": nothing is fetched from anywhere, and
# the only scripts that run are the page's own, each named by its SHA-256 (no
# 'unsafe-inline' for scripts: were a tag ever smuggled into the page, its script would
# not run). Styles: the page's one <style> by its hash too; plotly.js draws with inline
# style attributes and a <style> element of its own, so 'unsafe-inline' stays for styles
# only (a style can neither run code nor fetch anything under default-src 'none').
# data: images (the heatmap).
def content_security_policy(scripts: Iterable[str] = ()) -> str:
    hashes = " ".join(dict.fromkeys(_sha256_source(script) for script in scripts))
    sources = hashes or "'none'"
    return (
        f"default-src 'none'; script-src {sources}; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'"
    )


def _sha256_source(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return f"'sha256-{digest}'"


_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)

REQUIRED_TABLE = "daily_site_summary"


def band(value: float | None, median: float | None) -> str:
    """The Low / Average / Strong label (docs/metrics.md) of one day's revenue per session
    against its trailing median."""
    if value is None or median is None:
        return NO_BAND
    if value < LOW_BELOW * median:
        return LOW
    if value > STRONG_ABOVE * median:
        return STRONG
    return AVERAGE


def trailing_median(history: dict[date, float], day: date) -> float | None:
    """The median of `history` (day -> revenue per session) over the TRAILING_DAYS days
    before `day`; None with fewer than MIN_HISTORY_DAYS such days."""
    earlier = [
        value
        for offset in range(1, TRAILING_DAYS + 1)
        if (value := history.get(day - timedelta(days=offset))) is not None
    ]
    return statistics.median(earlier) if len(earlier) >= MIN_HISTORY_DAYS else None


# -- what the report reads ----------------------------------------------------------------


@dataclass(frozen=True)
class DayRow:
    day: date
    site: str
    sessions: int
    revenue: float
    conversion_value: float
    cost: float
    session_value: float | None
    revenue_per_session: float | None
    cost_per_session: float | None
    median: float | None = None
    band: str = NO_BAND


@dataclass(frozen=True)
class Totals:
    sessions: int = 0
    revenue: float = 0.0
    conversion_value: float = 0.0
    cost: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.sessions + other.sessions,
            self.revenue + other.revenue,
            self.conversion_value + other.conversion_value,
            self.cost + other.cost,
        )

    @property
    def session_value(self) -> float | None:
        return _ratio(self.revenue + self.conversion_value, self.sessions)

    @property
    def revenue_per_session(self) -> float | None:
        return _ratio(self.revenue, self.sessions)

    @property
    def cost_per_session(self) -> float | None:
        return _ratio(self.cost, self.sessions)


@dataclass(frozen=True)
class Campaign:
    site: str
    source: str
    medium: str
    campaign: str
    totals: Totals

    @property
    def label(self) -> str:
        return f"{self.source} / {self.medium} / {self.campaign}"


@dataclass(frozen=True)
class PerUser:
    period: str
    site: str
    sessions: int
    users: int
    sessions_per_user: float | None


@dataclass
class ReportData:
    start: date
    end: date
    site: str | None
    sites: list[str]
    currency: str
    timezone: str
    days: list[DayRow]  # the range's rows, with their bands
    channels: dict[str, Totals] = field(default_factory=dict)
    campaigns: list[Campaign] = field(default_factory=list)
    devices: dict[str, Totals] = field(default_factory=dict)
    countries: dict[str, Totals] = field(default_factory=dict)
    heatmap: dict[tuple[int, int], int] = field(default_factory=dict)  # (isodow, hour)
    converted: bool = False  # sites of several currencies, converted to the reporting one
    unrated: list[str] = field(default_factory=list)  # sites left out of money: no rate
    weekly: list[PerUser] = field(default_factory=list)
    monthly: list[PerUser] = field(default_factory=list)

    def site_totals(self, site: str) -> Totals:
        return sum((_totals(row) for row in self.days if row.site == site), Totals())

    @property
    def totals(self) -> Totals:
        return sum((_totals(row) for row in self.days), Totals())


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    start: date
    end: date
    sites: list[str]
    days: int

    def line(self) -> str:
        sites = for_terminal(", ".join(self.sites))  # site ids are data
        return (
            f"wrote the report of {self.start}..{self.end} ({self.days} days; {sites}) "
            f"to {self.path}"
        )


def write_report(
    settings: Settings,
    out: Path | None = None,
    start: date | None = None,
    end: date | None = None,
    site: str | None = None,
) -> WrittenReport:
    """Read the marts, draw the charts, and write one HTML file (atomically)."""
    data = read_marts(settings, start, end, site)
    path = out if out is not None else settings.data_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(render_html(data), encoding="utf-8")
    partial.replace(path)
    days = len({row.day for row in data.days})
    return WrittenReport(path, data.start, data.end, data.sites, days)


def read_marts(
    settings: Settings, start: date | None, end: date | None, site: str | None
) -> ReportData:
    marts_dir = settings.marts_dir
    globs = mart_globs(marts_dir)
    if REQUIRED_TABLE not in globs:
        raise SessionflowError(
            f"no marts under {marts_dir}: build days first "
            "(`sessionflow run daily` or `sessionflow backfill`)"
        )
    if start is not None and end is not None and end < start:
        raise SessionflowError(f"--end {end} is before --start {start}")
    con = connect(settings)
    try:
        for table, pattern in globs.items():
            # Exactly as `sessionflow query` opens them: a view per table, read by name,
            # partition keys included.
            con.execute(f'CREATE VIEW "{table}" AS {mart_select(table, pattern)}')
        with memory_bounded(settings, "reading the marts"):
            return _read(con, set(globs), settings, start, end, site)
    except duckdb.Error as exc:
        raise SessionflowError(f"reading the marts failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _read(
    con: duckdb.DuckDBPyConnection,
    tables: set[str],
    settings: Settings,
    start: date | None,
    end: date | None,
    site: str | None,
) -> ReportData:
    held = con.execute(
        "SELECT min(date), max(date), count(*) FROM daily_site_summary "
        "WHERE $site IS NULL OR site_id = $site",
        {"site": site},
    ).fetchone()
    assert held is not None
    first, last, count = held
    if not count:
        where = f"for site {site} " if site else ""
        raise SessionflowError(f"the marts under {settings.marts_dir} hold no days {where}yet")
    if start is None and end is not None and end < first:
        raise SessionflowError(
            f"no days to report: --end {end} is before the first day in the marts ({first})"
        )
    if end is None and start is not None and start > last:
        raise SessionflowError(
            f"no days to report: --start {start} is after the last day in the marts ({last})"
        )
    start = start or first
    end = end or last
    scope = f"site {site}" if site else "any site"
    held_sites = [
        str(row[0])
        for row in con.execute(
            "SELECT DISTINCT site_id FROM daily_site_summary "
            "WHERE $site IS NULL OR site_id = $site",
            {"site": site},
        ).fetchall()
    ]
    currency, rates = report_money(settings, held_sites)
    con.register("report_sites", _report_sites(settings, rates))
    history = _day_rows(con, end, site)
    days = [row for row in history if start <= row.day <= end]
    if not days:
        raise SessionflowError(
            f"no days between {start} and {end} for {scope} in the marts "
            f"(they hold {first}..{last})"
        )
    params: dict[str, Any] = {"start": start, "end": end, "site": site}
    data = ReportData(
        start=start,
        end=end,
        site=site,
        sites=sorted({row.site for row in days}),
        currency=currency,
        timezone=_zones_label(settings, sorted({row.site for row in days})),
        days=_with_bands(history, days),
        converted=len({settings.site_currency(s) for s in held_sites}) > 1,
        unrated=sorted(s for s, rate in rates.items() if rate is None),
    )
    in_range = "date BETWEEN $start AND $end AND ($site IS NULL OR site_id = $site)"
    if "daily_sessions" in tables:
        data.channels = _split(con, "channel_group", in_range, params)
        data.devices = _split(con, "device_category", in_range, params)
        data.countries = _split(con, "country", in_range, params)
    if "daily_cost_per_session" in tables:
        rows = con.execute(
            "SELECT site_id, source, medium, campaign, sum(sessions), sum(revenue * rate), "
            "sum(conversion_value * rate), sum(cost * rate) FROM daily_cost_per_session "
            f"LEFT JOIN report_sites USING (site_id) WHERE {in_range} GROUP BY ALL ORDER BY ALL",
            params,
        ).fetchall()
        data.campaigns = [
            Campaign(s, src, med, camp, Totals(int(n or 0), _f(rev), _f(cv), _f(cost)))
            for s, src, med, camp, n, rev, cv, cost in rows
        ]
    if "sessions" in tables:
        # Each session's local weekday and hour in its own site's zone.
        rows = con.execute(
            "SELECT isodow(timezone(zone, session_start)), hour(timezone(zone, session_start)), "
            "count(*) FROM sessions LEFT JOIN report_sites USING (site_id) "
            "WHERE session_date BETWEEN $start AND $end "
            "AND ($site IS NULL OR site_id = $site) GROUP BY ALL",
            params,
        ).fetchall()
        data.heatmap = {(int(dow), int(hour)): int(n) for dow, hour, n in rows}
    for table, key, fmt, target in (
        ("weekly_sessions_per_user", "week", "%G-W%V", data.weekly),
        ("monthly_sessions_per_user", "month", "%Y-%m", data.monthly),
    ):
        if table not in tables:
            continue
        periods = sorted({(start + timedelta(days=i)).strftime(fmt) for i in _span(start, end)})
        # Table and column names are this module's constants, never input.
        rows = con.execute(
            f"SELECT {key}, site_id, sessions, users, sessions_per_user FROM {table} "
            f"WHERE list_contains($periods, {key}) AND ($site IS NULL OR site_id = $site) "
            f"ORDER BY {key}, site_id",
            {"periods": periods, "site": site},
        ).fetchall()
        target.extend(
            PerUser(str(p), s, int(n or 0), int(u or 0), _opt(spu)) for p, s, n, u, spu in rows
        )
    return data


def _day_rows(con: duckdb.DuckDBPyConnection, end: date, site: str | None) -> list[DayRow]:
    """Every day up to `end` (earlier ones are the trailing median's history)."""
    rows = con.execute(
        "SELECT date, site_id, sessions, revenue * rate, conversion_value * rate, cost * rate, "
        "session_value * rate, revenue_per_session * rate, cost_per_session * rate "
        "FROM daily_site_summary LEFT JOIN report_sites USING (site_id) "
        "WHERE date <= $end AND ($site IS NULL OR site_id = $site) ORDER BY site_id, date",
        {"end": end, "site": site},
    ).fetchall()
    return [
        DayRow(d, s, int(n or 0), _f(rev), _f(cv), _f(cost), _opt(sv), _opt(rps), _opt(cps))
        for d, s, n, rev, cv, cost, sv, rps, cps in rows
    ]


def report_money(settings: Settings, sites: list[str]) -> tuple[str, dict[str, float | None]]:
    """The currency of the report's amounts and each site's rate into it: the sites' own
    currency when they all keep one, else the reporting currency (`currency`), each
    site's amounts converted with [currency_rates] (None: its currency has no rate)."""
    currencies = {settings.site_currency(site) for site in sites}
    if len(currencies) == 1:
        return currencies.pop(), dict.fromkeys(sites, 1.0)
    return settings.currency, {
        site: settings.rate_to_reporting(settings.site_currency(site)) for site in sites
    }


def _report_sites(settings: Settings, rates: dict[str, float | None]) -> pa.Table:
    """report_sites(site_id, zone, rate): each site's time zone and its rate into the
    report's currency (NULL: none, its amounts are left out)."""
    sites = sorted(rates)
    return pa.table(
        {
            "site_id": pa.array(sites, pa.string()),
            "zone": pa.array([settings.site_timezone(site) for site in sites], pa.string()),
            "rate": pa.array([rates[site] for site in sites], pa.float64()),
        }
    )


def _zones_label(settings: Settings, sites: list[str]) -> str:
    zones = {settings.site_timezone(site) for site in sites}
    return zones.pop() if len(zones) == 1 else "each site's own time zone"


def _with_bands(history: list[DayRow], days: list[DayRow]) -> list[DayRow]:
    by_site: dict[str, dict[date, float]] = defaultdict(dict)
    for row in history:
        if row.sessions and row.revenue_per_session is not None:
            by_site[row.site][row.day] = row.revenue_per_session
    banded = []
    for row in days:
        median = trailing_median(by_site[row.site], row.day)
        value = row.revenue_per_session if row.sessions else None
        banded.append(replace(row, median=median, band=band(value, median)))
    return banded


def _split(
    con: duckdb.DuckDBPyConnection, column: str, where: str, params: dict[str, Any]
) -> dict[str, Totals]:
    """daily_sessions summed by `column` (one of this module's constants)."""
    assert column in {"channel_group", "device_category", "country"}
    rows = con.execute(
        f"SELECT coalesce({column}, '(not set)'), sum(sessions), sum(revenue * rate), "
        "sum(conversion_value * rate) FROM daily_sessions LEFT JOIN report_sites "
        f"USING (site_id) WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    return {str(k): Totals(int(n or 0), _f(rev), _f(cv)) for k, n, rev, cv in rows}


# -- the charts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    about: str
    figure: go.Figure


def charts(data: ReportData) -> list[Chart]:
    return [
        _daily_trends(data),
        _bands_chart(data),
        _channels_chart(data),
        _campaigns_chart(data),
        _devices_countries_chart(data),
        _heatmap_chart(data),
        _per_user_chart(data),
    ]


def _site_colour(data: ReportData, site: str) -> str:
    return SITE_COLOURS[data.sites.index(site) % len(SITE_COLOURS)]


def _daily_trends(data: ReportData) -> Chart:
    money = data.currency
    panels = (
        ("sessions", "Sessions", ""),
        ("session_value", f"Session value ({money})", ":.2f"),
        ("revenue_per_session", f"Revenue per session ({money})", ":.2f"),
        ("cost_per_session", f"Cost per session ({money})", ":.2f"),
    )
    fig = make_subplots(
        rows=2, cols=2, subplot_titles=[title for _, title, _ in panels], vertical_spacing=0.16
    )
    for i, (measure, title, fmt) in enumerate(panels):
        for site in data.sites:
            rows = [row for row in data.days if row.site == site]
            fig.add_trace(
                go.Scatter(
                    x=[row.day.isoformat() for row in rows],
                    y=[getattr(row, measure) for row in rows],
                    name=_p(site),
                    legendgroup=site,
                    showlegend=i == 0,
                    mode="lines+markers",
                    line={"color": _site_colour(data, site)},
                    meta={"measure": measure, "site": site},
                    hovertemplate=f"{_p(site)}<br>%{{x}}<br>{title}: %{{y{fmt}}}<extra></extra>",
                ),
                row=i // 2 + 1,
                col=i % 2 + 1,
            )
    _layout(fig, 620)
    _daily_axes(fig, data)
    return Chart(
        "chart-daily-trends",
        "Daily trends",
        "Per site and day, from daily_site_summary: sessions, session value ((revenue + "
        "conversion value) / sessions), revenue per session and blended cost per session "
        "(all costs / all sessions).",
        fig,
    )


def _bands_chart(data: ReportData) -> Chart:
    fig = make_subplots(
        rows=len(data.sites),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[_p(site) for site in data.sites],
        vertical_spacing=0.12 if len(data.sites) > 1 else 0.0,
    )
    legend_done: set[str] = set()
    for index, site in enumerate(data.sites, start=1):
        rows = [row for row in data.days if row.site == site]
        x = [row.day.isoformat() for row in rows]
        low = [None if r.median is None else LOW_BELOW * r.median for r in rows]
        high = [None if r.median is None else STRONG_ABOVE * r.median for r in rows]
        fig.add_trace(
            go.Scatter(x=x, y=low, mode="lines", line={"width": 0}, showlegend=False,
                       hoverinfo="skip", meta={"measure": "band_low", "site": site}),
            row=index, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=high, mode="lines", line={"width": 0}, fill="tonexty",
                fillcolor="rgba(255, 159, 28, 0.18)", name="Average band",
                legendgroup="average-band", showlegend=index == 1, hoverinfo="skip",
                meta={"measure": "band_high", "site": site},
            ),
            row=index, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=[r.median for r in rows], mode="lines", name="trailing 28-day median",
                line={"dash": "dash", "color": "#555"}, legendgroup="median",
                showlegend=index == 1, meta={"measure": "median", "site": site},
                hovertemplate="median %{y:.2f}<extra></extra>",
            ),
            row=index, col=1,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=x, y=[r.revenue_per_session for r in rows], mode="lines",
                line={"color": _site_colour(data, site)}, name=_p(site), showlegend=False,
                hoverinfo="skip", meta={"measure": "revenue_per_session", "site": site},
            ),
            row=index, col=1,
        )  # fmt: skip
        for label in (LOW, AVERAGE, STRONG, NO_BAND):
            points = [r for r in rows if r.band == label and r.revenue_per_session is not None]
            if not points:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[r.day.isoformat() for r in points],
                    y=[r.revenue_per_session for r in points],
                    mode="markers",
                    name=label,
                    legendgroup=label,
                    showlegend=label not in legend_done,
                    legendrank=1001 + list(BAND_COLOURS).index(label),
                    marker={"color": BAND_COLOURS[label], "size": 10,
                            "line": {"color": "white", "width": 1}},
                    meta={"measure": "band", "band": label, "site": site},
                    customdata=[[r.median] for r in points],
                    hovertemplate=f"{_p(site)} %{{x}}<br>revenue per session %{{y:.2f}}"
                    f"<br>median %{{customdata[0]:.2f}}<br>{label}<extra></extra>",
                ),
                row=index, col=1,
            )  # fmt: skip
            legend_done.add(label)
    _layout(fig, 260 + 220 * len(data.sites))
    _daily_axes(fig, data)
    return Chart(
        "chart-bands",
        "Revenue per session: Low / Average / Strong",
        BANDS_DEFINITION + " The shaded area is the Average band; the dashed line the median.",
        fig,
    )


def _channels_chart(data: ReportData) -> Chart:
    names = [_p(name) for name in data.channels]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["Sessions", f"Session value ({data.currency})"]
    )
    fig.add_trace(
        go.Bar(
            y=names, x=[t.sessions for t in data.channels.values()], orientation="h",
            name="sessions", marker={"color": "#1f77b4"}, meta={"measure": "sessions"},
        ),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Bar(
            y=names, x=[t.session_value for t in data.channels.values()], orientation="h",
            name="session value", marker={"color": "#2ca02c"}, meta={"measure": "session_value"},
            hovertemplate="%{y}: %{x:.2f}<extra></extra>",
        ),
        row=1, col=2,
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(showlegend=False)
    _layout(fig, 140 + 34 * max(len(names), 3))
    _no_data(fig, not names, "daily_sessions")
    return Chart(
        "chart-channels",
        "Channels",
        "GA4 default channel groups over the range (daily_sessions): sessions, and session "
        "value = (revenue + conversion value) / sessions.",
        fig,
    )


def _campaigns_chart(data: ReportData) -> Chart:
    paid = [c for c in data.campaigns if c.totals.cost > 0 and c.totals.sessions > 0]
    unmatched = sum(c.totals.cost for c in data.campaigns if c.totals.sessions == 0)
    fig = go.Figure()
    biggest = max((c.totals.sessions for c in paid), default=1)
    for site in data.sites:
        points = [c for c in paid if c.site == site]
        if not points:
            continue
        fig.add_trace(
            go.Scatter(
                x=[c.totals.cost_per_session for c in points],
                y=[c.totals.session_value for c in points],
                mode="markers",
                name=_p(site),
                text=[_p(c.label) for c in points],
                customdata=[[c.totals.sessions, c.totals.cost] for c in points],
                marker={
                    "size": [8 + 32 * (c.totals.sessions / biggest) ** 0.5 for c in points],
                    "color": _site_colour(data, site),
                    "opacity": 0.75,
                    "line": {"color": "white", "width": 1},
                },
                meta={"measure": "campaigns", "site": site},
                hovertemplate="%{text}<br>cost per session %{x:.2f}<br>session value "
                "%{y:.2f}<br>sessions %{customdata[0]}, cost %{customdata[1]:.2f}<extra>"
                + _p(site)
                + "</extra>",
            )
        )
    top = max(
        [c.totals.cost_per_session or 0.0 for c in paid]
        + [c.totals.session_value or 0.0 for c in paid]
        + [0.1]
    )
    fig.add_trace(
        go.Scatter(
            x=[0, top], y=[0, top], mode="lines", name="value = cost",
            line={"dash": "dot", "color": "#888"}, hoverinfo="skip",
            meta={"measure": "break_even"},
        )
    )  # fmt: skip
    # The axes fit the bubbles; the break-even line is clipped to them.
    widest = max([c.totals.cost_per_session or 0.0 for c in paid] + [0.1])
    tallest = max([c.totals.session_value or 0.0 for c in paid] + [0.1])
    fig.update_xaxes(
        title_text=f"cost per session ({data.currency})", range=[-widest * 0.03, widest * 1.15]
    )
    fig.update_yaxes(
        title_text=f"session value ({data.currency})", range=[-tallest * 0.03, tallest * 1.1]
    )
    _layout(fig, 460)
    _no_data(fig, not paid, "daily_cost_per_session")
    note = (
        f" {unmatched:,.2f} {data.currency} of cost matched no session and is not shown."
        if unmatched
        else ""
    )
    return Chart(
        "chart-campaigns",
        "Campaigns: cost per session against session value",
        "Each bubble is a source / medium / campaign with cost in the range "
        "(daily_cost_per_session), sized by sessions. Above the dotted line a session is "
        "worth more than it cost." + note,
        fig,
    )


def _devices_countries_chart(data: ReportData) -> Chart:
    countries = list(data.countries.items())
    shown = countries[:TOP_COUNTRIES]
    rest = sum((t for _, t in countries[TOP_COUNTRIES:]), Totals())
    if rest.sessions:
        shown.append(("other", rest))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["By device", "By country"])
    for col, pairs, colour, measure in (
        (1, list(data.devices.items()), "#9467bd", "device"),
        (2, shown, "#17becf", "country"),
    ):
        fig.add_trace(
            go.Bar(
                x=[_p(name) for name, _ in pairs],
                y=[t.sessions for _, t in pairs],
                customdata=[[t.session_value] for _, t in pairs],
                marker={"color": colour},
                name=measure,
                meta={"measure": measure},
                hovertemplate="%{x}: %{y} sessions<br>session value %{customdata[0]:.2f}"
                "<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_yaxes(title_text="sessions", row=1, col=1)
    fig.update_layout(showlegend=False)
    _layout(fig, 400)
    _no_data(fig, not data.devices, "daily_sessions")
    return Chart(
        "chart-devices-countries",
        "Devices and countries",
        f"Sessions by device category and by country (the {TOP_COUNTRIES} largest, the rest "
        "as other), from daily_sessions; hover for session value.",
        fig,
    )


def _heatmap_chart(data: ReportData) -> Chart:
    z = [[data.heatmap.get((dow, hour), 0) for hour in range(24)] for dow in range(1, 8)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{hour:02d}" for hour in range(24)],
            y=list(WEEKDAYS),
            colorscale="Blues",
            colorbar={"title": {"text": "sessions"}},
            meta={"measure": "sessions_by_hour"},
            hovertemplate="%{y} %{x}:00: %{z} sessions<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(title_text=f"hour of day ({data.timezone})", type="category")
    fig.update_yaxes(autorange="reversed", type="category")
    _layout(fig, 380)
    _no_data(fig, not data.heatmap, "sessions")
    return Chart(
        "chart-heatmap",
        "Sessions by hour of day and day of week",
        f"Sessions by the local hour and ISO weekday of their start (session_start in the "
        f"sessions mart, in {data.timezone}).",
        fig,
    )


def _per_user_chart(data: ReportData) -> Chart:
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Weekly (ISO weeks)", "Monthly"])
    for col, rows, grain in ((1, data.weekly, "weekly"), (2, data.monthly, "monthly")):
        for site in data.sites:
            mine = [r for r in rows if r.site == site]
            if not mine:
                continue
            fig.add_trace(
                go.Bar(
                    x=[_p(r.period) for r in mine],
                    y=[r.sessions_per_user for r in mine],
                    customdata=[[r.sessions, r.users] for r in mine],
                    name=_p(site),
                    legendgroup=site,
                    showlegend=col == 1,
                    marker={"color": _site_colour(data, site)},
                    meta={"measure": f"{grain}_sessions_per_user", "site": site},
                    hovertemplate=f"{_p(site)} %{{x}}<br>%{{y:.2f}} sessions per user<br>"
                    "%{customdata[0]} sessions, %{customdata[1]} users<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="sessions per user", row=1, col=1, rangemode="tozero")
    fig.update_layout(barmode="group")
    _layout(fig, 380)
    _no_data(fig, not (data.weekly or data.monthly), "weekly_sessions_per_user")
    return Chart(
        "chart-sessions-per-user",
        "Sessions per user",
        "Weeks and months that overlap the range, shown whole and to date as built "
        "(weekly_sessions_per_user, monthly_sessions_per_user). Only sessions with a user "
        "(a user_id, or a GA4 client id) count; cookie-free visitors' ids live one day.",
        fig,
    )


def _layout(fig: go.Figure, height: int) -> None:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 30, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.12},
        hoverlabel={"namelength": -1},
    )


def _daily_axes(fig: go.Figure, data: ReportData) -> None:
    """Whole days on every x axis: plotly's automatic ticks on a few days fall at 00:00
    and 12:00, so ticks are placed from the first day, a whole number of days apart
    (at most `DAILY_TICKS` of them), and say the date only."""
    step_days = max(1, math.ceil(((data.end - data.start).days + 1) / DAILY_TICKS))
    fig.update_xaxes(
        type="date",
        tickmode="linear",
        tick0=data.start.isoformat(),
        dtick=step_days * DAY_MS,
        tickformat="%Y-%m-%d",
        hoverformat="%Y-%m-%d",
    )


def _no_data(fig: go.Figure, empty: bool, table: str) -> None:
    if empty:
        fig.add_annotation(
            text=f"no rows in {table} for this range",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            font={"size": 16, "color": "#888"},
        )


# -- the page -----------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #f6f7f9; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 0 0 6px; }
.meta, .about, footer { color: #555; font-size: 0.92rem; }
section { background: #fff; border-radius: 8px; padding: 16px 20px; margin: 16px 0;
          box-shadow: 0 1px 3px rgba(0, 0, 0, 0.08); }
table { border-collapse: collapse; font-size: 0.92rem; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #e5e5e5; }
td { white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
          margin-right: 6px; }
th:first-child, td:first-child { text-align: left; }
.band { font-weight: 600; }
.band-low { color: #d62728; } .band-average { color: #c77700; }
.band-strong { color: #2ca02c; } .band-na { color: #888; }
footer { padding-bottom: 24px; }
"""


def render_html(data: ReportData) -> str:
    drawn = charts(data)
    parts = []
    for index, chart in enumerate(drawn):
        div = pio.to_html(
            chart.figure,
            full_html=False,
            include_plotlyjs=index == 0,  # plotly.js itself, once, inline
            include_mathjax=False,
            config=PLOTLY_CONFIG,
            div_id=chart.id,
            validate=True,
        )
        parts.append(
            f'<section id="section-{chart.id}"><h2>{_e(chart.title)}</h2>'
            f'<p class="about">{_e(chart.about)}</p>{div}</section>'
        )
    scope = _e(data.site) if data.site else f"all sites ({_e(', '.join(data.sites))})"
    title = f"sessionflow report: {data.start} to {data.end}"
    policy = content_security_policy(_SCRIPT.findall("".join(parts)))
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<header><h1>sessionflow report</h1>"
        f'<p class="meta">{data.start} to {data.end} · {scope} · amounts in '
        f"{_e(data.currency)}{_e(_conversion_note(data))} · dates in {_e(data.timezone)} · "
        "from the published marts"
        "</p></header>\n<main>\n"
        f"{_summary(data)}\n{''.join(parts)}\n{_band_table(data)}\n</main>\n"
        "<footer>Made by <code>sessionflow report</code> from the same Parquet marts "
        "<code>sessionflow query</code> reads. Charts by plotly.js, embedded: this file "
        "loads nothing from the network.</footer>\n</body>\n</html>\n"
    )


def _conversion_note(data: ReportData) -> str:
    if not data.converted:
        return ""
    note = " (each site's amounts converted from its own currency with [currency_rates]"
    if data.unrated:
        note += f"; no rate for the currency of {', '.join(data.unrated)}: left out"
    return note + ")"


def _summary(data: ReportData) -> str:
    money = data.currency
    head = (
        "<tr><th>site</th><th>days</th><th>sessions</th>"
        f"<th>revenue ({money})</th><th>session value</th><th>revenue per session</th>"
        f"<th>cost ({money})</th><th>cost per session</th><th>last day's band</th></tr>"
    )
    lines = []
    for site in data.sites:
        rows = [row for row in data.days if row.site == site]
        last = rows[-1]
        lines.append(
            _summary_row(
                site,
                len(rows),
                data.site_totals(site),
                last.band,
                str(last.day),
                _site_colour(data, site),
            )
        )
    if len(data.sites) > 1:
        days = len({row.day for row in data.days})
        lines.append(_summary_row("all sites", days, data.totals, None, "", None))
    return (
        '<section id="summary"><h2>Summary</h2><p class="about">Totals over the range; '
        "ratios are sums divided (never averaged ratios). The band is the last day's "
        "revenue per session against its site's trailing 28-day median (below).</p>"
        f'<table id="summary-table">{head}{"".join(lines)}</table></section>'
    )


def _summary_row(
    name: str, days: int, totals: Totals, label: str | None, day: str, colour: str | None
) -> str:
    band_cell = (
        f'<span class="band {_band_class(label)}">{label}</span> ({day})'
        if label is not None
        else ""
    )
    swatch = f'<span class="swatch" style="background: {colour}"></span>' if colour else ""
    cells = [
        swatch + _e(name),
        str(days),
        f"{totals.sessions:,}",
        f"{totals.revenue:,.2f}",
        _money(totals.session_value),
        _money(totals.revenue_per_session),
        f"{totals.cost:,.2f}",
        _money(totals.cost_per_session),
        band_cell,
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _band_table(data: ReportData) -> str:
    rows = "".join(
        f'<tr data-site="{_e(row.site)}" data-date="{row.day}"><td>{row.day}</td>'
        f"<td>{_e(row.site)}</td><td>{row.sessions:,}</td>"
        f"<td>{_money(row.revenue_per_session)}</td><td>{_money(row.median)}</td>"
        f'<td><span class="band {_band_class(row.band)}">{row.band}</span></td></tr>'
        for row in sorted(data.days, key=lambda r: (r.day, r.site))
    )
    return (
        '<section id="bands"><h2>Revenue per session bands, day by day</h2>'
        f'<p class="about">{_e(BANDS_DEFINITION)}</p><details><summary>Every day</summary>'
        '<table id="band-table"><tr><th>date</th><th>site</th><th>sessions</th>'
        "<th>revenue per session</th><th>trailing 28-day median</th><th>band</th></tr>"
        f"{rows}</table></details></section>"
    )


# -- small helpers --------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


# Every text from the data that plotly draws (a site, a campaign, a channel, a device, a
# country, a period) goes through this: plotly.js renders tags in labels (`<a href>`).
_p = for_plotly


def _band_class(label: str) -> str:
    return "band-na" if label == NO_BAND else f"band-{label.lower()}"


def _money(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:,.2f}"


def _ratio(numerator: float, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _f(value: Decimal | float | None) -> float:
    return float(value) if value is not None else 0.0


def _opt(value: Decimal | float | None) -> float | None:
    return float(value) if value is not None else None


def _span(start: date, end: date) -> Iterable[int]:
    return range((end - start).days + 1)


def _totals(row: DayRow) -> Totals:
    return Totals(row.sessions, row.revenue, row.conversion_value, row.cost)
