"""`sessionflow report` (pipeline/warehouse/report.py): the numbers it embeds are the
marts' (as `sessionflow query` reads them), its revenue per session bands are recomputed
here independently, and --site / --start / --end choose what it shows. No broker needed;
the browser tests are tests/integration/test_report_chromium.py."""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings, SiteSettings
from pipeline.errors import SessionflowError
from pipeline.warehouse.query import run_query
from pipeline.warehouse.report import (
    AVERAGE,
    LOW,
    NO_BAND,
    STRONG,
    band,
    read_marts,
    render_html,
    trailing_median,
    write_report,
)
from tests.conftest import clean_env, run_cli
from tests.unit.warehouse.report_support import (
    LAST,
    SITES,
    START,
    TIMEZONE,
    build_marts,
    plotted,
    report_settings,
    settings_environ,
    traces,
)

DAY_MS = 86_400_000  # plotly's dtick on a date axis is in milliseconds
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DAILY_CHARTS = ("chart-daily-trends", "chart-bands")
CHARTS = {
    "chart-daily-trends", "chart-bands", "chart-channels", "chart-campaigns",
    "chart-devices-countries", "chart-heatmap", "chart-sessions-per-user",
}  # fmt: skip


# -- the bands, alone ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "median", "expected"),
    [
        (0.79, 1.0, LOW),
        (0.8, 1.0, AVERAGE),  # 0.8 x median is Average, inclusive
        (1.0, 1.0, AVERAGE),
        (1.2, 1.0, AVERAGE),  # 1.2 x median too
        (1.21, 1.0, STRONG),
        (0.0, 0.0, AVERAGE),  # a site that never sells: nothing is below its median
        (0.5, 0.0, STRONG),
        (None, 1.0, NO_BAND),  # no sessions that day
        (1.0, None, NO_BAND),  # not enough history
    ],
)
def test_band(value: float | None, median: float | None, expected: str) -> None:
    assert band(value, median) == expected


def test_the_trailing_median_is_of_the_28_days_before_with_7_at_least() -> None:
    day = date(2026, 3, 1)
    history = {day - timedelta(days=n): float(n) for n in range(0, 40)}
    # Days D-1 .. D-28 hold 1 .. 28; D itself (0) and D-29 on (29, 30, ...) do not count.
    assert trailing_median(history, day) == statistics.median(range(1, 29))
    sparse = {day - timedelta(days=n): float(n) for n in (1, 2, 3, 4, 5, 6, 29)}
    assert trailing_median(sparse, day) is None  # six days in the window
    sparse[day - timedelta(days=28)] = 28.0
    assert trailing_median(sparse, day) == 4.0  # 1, 2, 3, 4, 5, 6, 28


# -- hand-written marts: exact bands ----------------------------------------------------


def write_summary_mart(marts: Path, site: str, values: dict[date, tuple[int, float]]) -> None:
    """daily_site_summary files as the build publishes them: the date in the path only."""
    for day, (sessions, revenue) in values.items():
        path = marts / "daily_site_summary" / f"date={day}" / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        rps = revenue / sessions if sessions else None
        table = pa.table(
            {
                "site_id": [site],
                "sessions": pa.array([sessions], pa.int64()),
                "revenue": [revenue],
                "conversion_value": [0.0],
                "cost": [sessions * 0.5],
                "cost_per_session": [0.5 if sessions else None],
                "session_value": [rps],
                "revenue_per_session": [rps],
            }
        )
        pq.write_table(table, path)


def test_bands_against_hand_written_marts(tmp_path: Path) -> None:
    """Only daily_site_summary published: the report still draws, the other charts say
    they have no rows. History before --start counts for the median."""
    settings = report_settings(tmp_path / "data")
    first = date(2026, 1, 1)
    # 30 days at 2.00 per session, then 1.59 (Low), 1.60 (Average), 2.40 (Average),
    # 2.41 (Strong) and a day without sessions.
    values = {first + timedelta(days=n): (100, 200.0) for n in range(30)}
    tail = [(100, 159.0), (100, 160.0), (100, 240.0), (100, 241.0), (0, 0.0)]
    for n, value in enumerate(tail, start=30):
        values[first + timedelta(days=n)] = value
    write_summary_mart(settings.marts_dir, "shop.example", values)

    start = first + timedelta(days=30)
    written = write_report(settings, start=start)
    page = written.path.read_text()

    assert written.path == settings.data_dir / "report.html"
    assert (written.start, written.end, written.days) == (start, start + timedelta(days=4), 5)
    assert band_rows(page) == {
        ("shop.example", str(start + timedelta(days=n))): label
        for n, label in enumerate([LOW, AVERAGE, AVERAGE, STRONG, NO_BAND])
    }
    figures = plotted(page)
    assert set(figures) == CHARTS
    (median,) = traces(figures["chart-bands"], measure="median", site="shop.example")
    assert median["y"] == [2.0] * 5  # earlier days of the range join the window: all 2.00
    assert page.count("no rows in ") >= 4  # channels, campaigns, devices, heatmap, per user


def test_sites_of_two_zones_and_currencies_in_one_report(tmp_path: Path) -> None:
    """Each session's hour in its own site's zone; amounts of sites that keep different
    currencies added up in the reporting one."""
    settings = Settings(
        data_dir=tmp_path / "data",
        sites=["a.example", "b.example"],
        site={"b.example": SiteSettings(timezone="Asia/Tokyo", currency="JPY")},
        currency_rates={"JPY": 0.0078125},  # 1/128: exact in binary
    )
    marts, day = settings.marts_dir, date(2026, 1, 1)  # a Thursday: ISO weekday 4
    summary = marts / "daily_site_summary" / f"date={day}" / "data.parquet"
    summary.parent.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "site_id": ["a.example", "b.example"],
                "sessions": pa.array([10, 20], pa.int64()),
                "revenue": [100.0, 12_800.0],  # 12,800 JPY = 100 USD
                "conversion_value": [0.0, 0.0],
                "cost": [0.0, 0.0],
                "cost_per_session": [None, None],
                "session_value": [10.0, 640.0],
                "revenue_per_session": [10.0, 640.0],
            }
        ),
        summary,
    )
    sessions = marts / "sessions" / f"date={day}" / "data.parquet"
    sessions.parent.mkdir(parents=True)
    start = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)  # 03:00 UTC is 12:00 in Tokyo
    pq.write_table(
        pa.table(
            {
                "session_date": [day, day],
                "site_id": ["a.example", "b.example"],
                "session_start": pa.array([start, start], pa.timestamp("us", tz="UTC")),
            }
        ),
        sessions,
    )

    data = read_marts(settings, None, None, None)

    assert data.heatmap == {(4, 3): 1, (4, 12): 1}
    assert (data.currency, data.converted) == ("USD", True)
    assert (data.site_totals("b.example").revenue, data.totals.revenue) == (100.0, 200.0)
    assert "amounts in USD (each site's amounts converted" in html.unescape(render_html(data))
    alone = read_marts(settings, None, None, "b.example")
    assert (alone.currency, alone.converted, alone.totals.revenue) == ("JPY", False, 12_800.0)
    assert alone.timezone == "Asia/Tokyo"


BAND_ROW = re.compile(
    r'<tr data-site="([^"]+)" data-date="([^"]+)">.*?<span class="band [^"]+">([^<]+)</span>'
)


def band_rows(page: str) -> dict[tuple[str, str], str]:
    """(site, date) -> band, from the page's day-by-day band table."""
    return {(site, day): label for site, day, label in BAND_ROW.findall(page)}


# -- real marts: the numbers are the marts' -----------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_marts(tmp_path_factory.mktemp("report"))


def query_rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    result = run_query(settings.marts_dir, sql)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def number(value: Any) -> float | None:
    return None if value is None else float(value)


def expected_bands(settings: Settings, site: str | None) -> dict[tuple[str, str], str]:
    """The Low / Average / Strong labels (docs/metrics.md) recomputed from `sessionflow
    query`'s rows: each day against the median of its site's previous 28 days (7 at least,
    days with sessions)."""
    rows = query_rows(
        settings,
        "SELECT site_id, date, sessions, revenue_per_session FROM daily_site_summary",
    )
    labels = {}
    for row in rows:
        if site and row["site_id"] != site:
            continue
        earlier = [
            float(other["revenue_per_session"])
            for other in rows
            if other["site_id"] == row["site_id"]
            and 1 <= (row["date"] - other["date"]).days <= 28
            and other["sessions"]
        ]
        label = "n/a"
        if len(earlier) >= 7 and row["sessions"]:
            median = statistics.median(earlier)
            value = float(row["revenue_per_session"])
            label = (
                "Low" if value < 0.8 * median else "Strong" if value > 1.2 * median else "Average"
            )
        labels[(row["site_id"], str(row["date"]))] = label
    return labels


def test_the_cli_report_embeds_the_marts_numbers(built: Settings) -> None:
    env = clean_env(**settings_environ(built))
    result = run_cli(env, "report")
    assert result.returncode == 0, result.stderr
    out = built.data_dir / "report.html"
    assert result.stdout.strip() == (
        f"wrote the report of {START}..{LAST} (10 days; blog.example, shop.example) to {out}"
    )
    page = out.read_text()
    figures = plotted(page)
    assert set(figures) == CHARTS
    # 10 days: a tick every 2 days (at most 8 ticks), from the first day.
    assert_daily_axes(figures, first=START, step_days=2)

    # Daily trends: every site's every day, as daily_site_summary holds them.
    summary = query_rows(built, "SELECT * FROM daily_site_summary ORDER BY site_id, date")
    assert {row["date"] for row in summary} == {START + timedelta(days=n) for n in range(10)}
    for site in SITES:
        rows = [row for row in summary if row["site_id"] == site]
        for measure in ("sessions", "session_value", "revenue_per_session", "cost_per_session"):
            (trace,) = traces(figures["chart-daily-trends"], measure=measure, site=site)
            assert trace["x"] == [str(row["date"]) for row in rows]
            assert trace["y"] == [number(row[measure]) for row in rows], (site, measure)
            assert any(trace["y"])

    # The bands: the day-by-day table and the chart's markers agree with a recomputation.
    bands = expected_bands(built, None)
    assert band_rows(page) == bands
    # Each site's first 7 days have too little history; the last 3 have a band.
    assert sum(label == "n/a" for label in bands.values()) == 2 * 7
    for label in ("Low", "Average", "Strong", "n/a"):
        marked = {
            (trace["meta"]["site"], day)
            for trace in traces(figures["chart-bands"], measure="band", band=label)
            for day in trace["x"]
        }
        assert marked == {key for key, value in bands.items() if value == label}
    assert "Low: below 0.8 times that median. Strong: above 1.2 times it." in page

    # Channels, devices and countries: daily_sessions summed over the range.
    for chart, measure, column in (
        ("chart-channels", "sessions", "channel_group"),
        ("chart-devices-countries", "device", "device_category"),
    ):
        rows = query_rows(
            built,
            f"SELECT {column} AS k, sum(sessions) AS n FROM daily_sessions GROUP BY 1",
        )
        (trace,) = traces(figures[chart], measure=measure)
        names = trace["y"] if chart == "chart-channels" else trace["x"]
        values = trace["x"] if chart == "chart-channels" else trace["y"]
        assert dict(zip(names, values, strict=True)) == {r["k"]: r["n"] for r in rows}
    (countries,) = traces(figures["chart-devices-countries"], measure="country")
    assert sum(countries["y"]) == sum(row["sessions"] for row in summary)

    # Campaigns: cost per session against session value, per source / medium / campaign.
    campaigns = query_rows(
        built,
        "SELECT site_id, source || ' / ' || medium || ' / ' || campaign AS label, "
        "sum(cost) / sum(sessions) AS cps, "
        "(sum(revenue) + sum(conversion_value)) / sum(sessions) AS value "
        "FROM daily_cost_per_session GROUP BY ALL HAVING sum(cost) > 0 AND sum(sessions) > 0",
    )
    assert campaigns
    drawn = {
        (trace["meta"]["site"], label): (x, y)
        for trace in traces(figures["chart-campaigns"], measure="campaigns")
        for label, x, y in zip(trace["text"], trace["x"], trace["y"], strict=True)
    }
    assert drawn.keys() == {(row["site_id"], row["label"]) for row in campaigns}
    for row in campaigns:
        x, y = drawn[(row["site_id"], row["label"])]
        assert x == pytest.approx(float(row["cps"])) and y == pytest.approx(float(row["value"]))

    # The heatmap: session_start in the property's time zone, recomputed with zoneinfo.
    starts = query_rows(built, "SELECT session_start FROM sessions")
    zone = ZoneInfo(TIMEZONE)
    counts = Counter(
        (
            row["session_start"].astimezone(zone).isoweekday(),
            row["session_start"].astimezone(zone).hour,
        )
        for row in starts
    )
    (heatmap,) = figures["chart-heatmap"]["data"]
    assert heatmap["y"] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert heatmap["z"] == [[counts[(dow, hour)] for hour in range(24)] for dow in range(1, 8)]
    assert sum(map(sum, heatmap["z"])) == sum(row["sessions"] for row in summary)

    # Sessions per user, weekly and monthly, as their marts hold them.
    for table, key, grain in (
        ("weekly_sessions_per_user", "week", "weekly"),
        ("monthly_sessions_per_user", "month", "monthly"),
    ):
        rows = query_rows(built, f"SELECT * FROM {table} ORDER BY {key}")
        for site in SITES:
            (trace,) = traces(
                figures["chart-sessions-per-user"], measure=f"{grain}_sessions_per_user", site=site
            )
            mine = [row for row in rows if row["site_id"] == site]
            assert trace["x"] == [row[key] for row in mine]
            assert trace["y"] == [number(row["sessions_per_user"]) for row in mine]
    assert len(traces(figures["chart-sessions-per-user"], site="shop.example")) == 2


def assert_daily_axes(figures: dict[str, dict[str, Any]], first: date, step_days: int) -> None:
    """Every x axis of the daily charts is a date axis whose ticks fall on whole days from
    `first`, `step_days` apart, and say the date only; every x value is a date."""
    for chart in DAILY_CHARTS:
        layout = figures[chart]["layout"]
        axes = [value for key, value in layout.items() if re.fullmatch(r"xaxis\d*", key)]
        assert axes, chart
        for axis in axes:
            assert axis["type"] == "date", (chart, axis)
            assert (axis["tickmode"], axis["tick0"]) == ("linear", str(first)), (chart, axis)
            assert axis["dtick"] == step_days * DAY_MS, (chart, axis)
            assert axis["tickformat"] == axis["hoverformat"] == "%Y-%m-%d", (chart, axis)
        for trace in figures[chart]["data"]:
            assert all(ISO_DATE.fullmatch(x) for x in trace["x"]), (chart, trace["x"])


def test_site_start_and_end_choose_what_the_report_shows(built: Settings, tmp_path: Path) -> None:
    start, end = START + timedelta(days=7), LAST - timedelta(days=1)
    out = tmp_path / "blog" / "report.html"
    env = clean_env(**settings_environ(built))
    result = run_cli(
        env, "report", "--site", "blog.example", "--start", str(start), "--end", str(end),
        "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"wrote the report of {start}..{end} (2 days; blog.example) to {out}"
    )
    page = out.read_text()
    figures = plotted(page)
    assert set(figures) == CHARTS
    assert "shop.example" not in page
    sites = {
        trace["meta"]["site"]
        for figure in figures.values()
        for trace in figure["data"]
        if "site" in (trace.get("meta") or {})
    }
    assert sites == {"blog.example"}

    summary = query_rows(
        built,
        "SELECT date, sessions, revenue_per_session FROM daily_site_summary "
        f"WHERE site_id = 'blog.example' AND date BETWEEN '{start}' AND '{end}' ORDER BY date",
    )
    (sessions,) = traces(figures["chart-daily-trends"], measure="sessions", site="blog.example")
    assert sessions["x"] == [str(start), str(end)]
    assert_daily_axes(figures, first=start, step_days=1)  # 2 days: plotly's own ticks say 12:00
    assert sessions["y"] == [row["sessions"] for row in summary]
    # The days before --start still count for the median: same bands as the full report.
    full = expected_bands(built, "blog.example")
    assert band_rows(page) == {
        key: label for key, label in full.items() if str(start) <= key[1] <= str(end)
    }
    assert all(label != "n/a" for label in band_rows(page).values())
    (heatmap,) = figures["chart-heatmap"]["data"]
    assert sum(map(sum, heatmap["z"])) == sum(row["sessions"] for row in summary)
    (weekly,) = traces(
        figures["chart-sessions-per-user"], measure="weekly_sessions_per_user", site="blog.example"
    )
    assert weekly["x"] == ["2026-W44", "2026-W45"]  # the weeks of Nov 1 and Nov 2-3


def test_an_empty_range_or_no_marts_is_a_one_line_error(built: Settings, tmp_path: Path) -> None:
    env = clean_env(**settings_environ(built))
    after = run_cli(env, "report", "--start", str(LAST + timedelta(days=1)))
    assert after.returncode == 1
    assert after.stderr.strip() == (
        f"Error: no days to report: --start {LAST + timedelta(days=1)} is after the last day "
        f"in the marts ({LAST})"
    )
    assert after.stdout == ""

    nothing = clean_env(**settings_environ(report_settings(tmp_path / "empty")))
    none = run_cli(nothing, "report")
    assert none.returncode == 1
    assert none.stderr.strip() == (
        f"Error: no marts under {tmp_path / 'empty' / 'marts'}: build days first "
        "(`sessionflow run daily` or `sessionflow backfill`)"
    )
    assert not (tmp_path / "empty" / "report.html").exists()

    cases: list[tuple[dict[str, Any], str]] = [
        ({"site": "nope.example"}, "the marts under"),
        ({"end": START - timedelta(days=1)}, "is before the first day in the marts"),
        ({"start": START, "end": START - timedelta(days=1)}, "is before --start"),
        ({"start": START - timedelta(days=30), "end": START - timedelta(days=20)}, "no days"),
    ]
    for kwargs, message in cases:
        with pytest.raises(SessionflowError, match=message) as caught:
            write_report(built, tmp_path / "x.html", **kwargs)
        assert "\n" not in str(caught.value)
    assert not (tmp_path / "x.html").exists()
