"""`sessionflow report`'s HTML in real headless Chromium (Debian's, driven by Playwright):
every chart draws, the page is not blank (its screenshot is docs/report.png), and it
loads nothing from the network. No broker needed: the marts are built from generated
traffic as in tests/unit/warehouse/test_report.py."""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Browser, Dialog, Page, Route, ViewportSize, sync_playwright

from pipeline.config import Settings
from pipeline.warehouse.report import content_security_policy, write_report
from tests.integration.test_tracker_chromium import CHROME, CHROMIUM_ARGS
from tests.unit.warehouse.report_support import LAST, build_marts, plotted

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report.png"
VIEWPORT: ViewportSize = {"width": 1200, "height": 900}
CHARTS = [
    "chart-daily-trends", "chart-bands", "chart-channels", "chart-campaigns",
    "chart-devices-countries", "chart-heatmap", "chart-sessions-per-user",
]  # fmt: skip
DRAWN = """ids => ids.map(id => {
  const div = document.getElementById(id);
  return {
    id,
    svgs: div.querySelectorAll('.main-svg').length,
    traces: (div.data || []).length,
    drawn: div.querySelectorAll('.cartesianlayer .trace, .cartesianlayer .hm').length,
    marks: div.querySelectorAll('.cartesianlayer .trace path, .cartesianlayer .hm image').length,
    images: Array.from(div.querySelectorAll('.hm image'), i => i.getAttribute('href') || ''),
  };
})"""
# Distinct colours of a PNG, counted by the browser itself (no imaging library needed).
COLOURS = """async png => {
  const image = new Image();
  image.src = 'data:image/png;base64,' + png;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const pixels = new Uint32Array(context.getImageData(0, 0, image.width, image.height).data.buffer);
  return new Set(pixels).size;
}"""


@pytest.fixture(scope="module")
def marts(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return build_marts(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(marts: Settings) -> Path:
    return write_report(marts).path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def drawn_page(browser: Browser, path: Path, errors: list[str]) -> Iterator[Page]:
    """`path` open in a context of its own, every chart drawn. Page errors, console errors
    (a Content-Security-Policy violation is one) and dialogs (an alert) go to `errors`."""
    context = browser.new_context(user_agent=CHROME, viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda dialog: _record_dialog(dialog, errors))
        page.goto(path.as_uri())
        page.wait_for_function(
            "ids => ids.every(id => document.querySelector('#' + id + ' .main-svg'))",
            arg=CHARTS,
        )
        yield page
    finally:
        context.close()


def _record_dialog(dialog: Dialog, errors: list[str]) -> None:
    errors.append(f"dialog: {dialog.message}")
    dialog.dismiss()


def test_every_chart_draws_and_the_page_is_not_blank(report: Path, browser: Browser) -> None:
    errors: list[str] = []
    with drawn_page(browser, report, errors) as page:
        drawn: list[dict[str, Any]] = page.evaluate(DRAWN, CHARTS)
        png = page.screenshot()  # one viewport: the summary and the daily trends
        colours = page.context.new_page()
        distinct = colours.evaluate(COLOURS, base64.b64encode(png).decode())

    assert errors == []  # no script error, no Content-Security-Policy violation
    for chart in drawn:
        assert chart["svgs"] >= 1, chart
        assert chart["traces"] >= 1 and chart["drawn"] == chart["traces"], chart
        assert chart["marks"] >= chart["traces"], chart
    (heatmap,) = [chart for chart in drawn if chart["id"] == "chart-heatmap"]
    assert [href[:22] for href in heatmap["images"]] == ["data:image/png;base64,"]
    assert distinct > 100, f"the screenshot looks blank: {distinct} colours"
    SCREENSHOT.write_bytes(png)


DAILY_CHARTS = ["chart-daily-trends", "chart-bands"]
TICK_LABELS = """ids => ids.flatMap(id => Array.from(
  document.querySelectorAll('#' + id + ' .xtick text'), text => text.textContent))"""


@pytest.mark.parametrize("days", [10, 2])
def test_the_daily_axes_show_dates_only(
    marts: Settings, browser: Browser, tmp_path: Path, days: int
) -> None:
    """The tick labels Chromium draws on the daily charts' x axes: dates, never a time
    (plotly's automatic ticks on a few days say 12:00), each a day of the report."""
    start = LAST - timedelta(days=days - 1)
    path = write_report(marts, tmp_path / "report.html", start, LAST).path
    errors: list[str] = []
    with drawn_page(browser, path, errors) as page:
        labels: list[str] = page.evaluate(TICK_LABELS, DAILY_CHARTS)
    assert errors == []
    in_range = {str(start + timedelta(days=n)) for n in range(days)}
    assert labels and all(label in in_range for label in labels), labels
    assert not any(":" in label for label in labels), labels


@dataclass
class Visit:
    routed: list[str]  # every request the browser tried to make, as routing saw it
    requests: list[str]  # every request event, data: URLs included
    errors: list[str]  # page errors and console errors (a CSP violation is one)


def visit(browser: Browser, path: Path, charts: list[str]) -> Visit:
    """Open `path` with every request routed: the page itself is served, anything else
    is recorded and refused."""
    page_url = path.as_uri()
    visit = Visit([], [], [])

    def answer(route: Route) -> None:
        visit.routed.append(route.request.url)
        if route.request.url == page_url:
            route.continue_()
        else:
            route.abort()

    context = browser.new_context(user_agent=CHROME, viewport=VIEWPORT)
    try:
        context.route("**/*", answer)
        page = context.new_page()
        page.on("request", lambda request: visit.requests.append(request.url))
        page.on("pageerror", lambda error: visit.errors.append(str(error)))
        page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
        page.goto(page_url)
        page.wait_for_function(
            "ids => ids.every(id => document.querySelector('#' + id + ' .main-svg'))",
            arg=charts,
        )
        if charts:
            # Hover a chart and scroll to the end: nothing lazy is fetched either.
            page.hover(f"#{charts[-1]} .nsewdrag")
            page.mouse.wheel(0, 20000)
        page.wait_for_timeout(500)
    finally:
        context.close()
    return visit


def test_the_page_loads_nothing_from_the_network(report: Path, browser: Browser) -> None:
    seen = visit(browser, report, CHARTS)
    assert seen.routed == [report.as_uri()]
    assert [url for url in seen.requests if not url.startswith("data:")] == [report.as_uri()]
    assert seen.errors == []


def test_the_network_check_catches_a_fetch(browser: Browser, tmp_path: Path) -> None:
    """The harness itself: a remote image is seen by the routing, and with the report's
    Content-Security-Policy the browser refuses it before any request (a console error)."""
    remote = "https://cdn.example.invalid/pixel.png"
    bare = tmp_path / "bare.html"
    bare.write_text(f'<!doctype html><html><body><img src="{remote}"></body></html>')
    assert visit(browser, bare, []).routed == [bare.as_uri(), remote]

    guarded = tmp_path / "guarded.html"
    policy = f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">'
    guarded.write_text(
        f'<!doctype html><html><head>{policy}</head><body><img src="{remote}"></body></html>'
    )
    seen = visit(browser, guarded, [])
    assert seen.routed == [guarded.as_uri()]
    assert any("Content Security Policy" in error for error in seen.errors), seen.errors


def test_the_html_names_no_cdn_and_no_remote_source(report: Path) -> None:
    page = report.read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, flags=re.DOTALL)
    library = [body for _, body in scripts if body.lstrip().startswith("/**\n* plotly.js v")]
    assert len(library) == 1  # plotly.js, embedded once
    assert all("src" not in attributes for attributes, _ in scripts)
    assert not re.search(r"<link\b|<iframe\b|<img\b|@import|url\(", page.replace(library[0], ""))
    # Outside the library's own text (its map tiles' defaults, never used here) the page
    # names no remote address at all.
    ours = page.replace(library[0], "")
    assert not re.search(r"https?:|//cdn|cdn\.", ours, flags=re.IGNORECASE)
    assert "Content-Security-Policy" in ours and "default-src 'none'" in ours
    assert set(plotted(page)) == set(CHARTS)


# A site id and campaigns that would be links, images or scripts if plotly.js read them
# as its pseudo-HTML (it draws <a href> in labels, legends, titles and hover text).
HOSTILE_SITE = '<a href="http://evil.example/site">site</a>'
HOSTILE_CAMPAIGNS = [
    '<a href="http://evil.example/c">click</a>',
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">js</a>',
    "<b>bold</b> %{x} &amp;",
]
IN_THE_PAGE = """() => ({
  svgLinks: document.querySelectorAll('svg a').length,
  images: document.querySelectorAll('img').length,
  evil: Array.from(document.querySelectorAll('[href], [src]'))
    .map(e => e.getAttribute('href') || e.getAttribute('src'))
    .filter(url => /evil|javascript:|^x$/.test(url)),
  legend: Array.from(document.querySelectorAll('.legendtext'), e => e.textContent),
  titles: Array.from(document.querySelectorAll('.annotation-text'), e => e.textContent),
})"""


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report's marts with blog.example renamed to HOSTILE_SITE and every campaign
    one of HOSTILE_CAMPAIGNS (as data from before any ingestion rule would have them)."""
    settings = build_marts(tmp_path_factory.mktemp("hostile-report"))
    renamed: dict[str, str] = {}
    for path in settings.marts_dir.rglob("*.parquet"):
        table = pq.read_table(path)
        for column, rename in (("site_id", _hostile_site), ("campaign", _hostile_campaign)):
            if column in table.column_names:
                values = [rename(value, renamed) for value in table[column].to_pylist()]
                index = table.column_names.index(column)
                table = table.set_column(index, column, pa.array(values, pa.string()))
        pq.write_table(table, path)
    return write_report(settings).path


def _hostile_site(value: str | None, renamed: dict[str, str]) -> str | None:
    return HOSTILE_SITE if value == "blog.example" else value


def _hostile_campaign(value: str | None, renamed: dict[str, str]) -> str | None:
    if value is None:
        return None
    if value not in renamed:
        renamed[value] = HOSTILE_CAMPAIGNS[len(renamed) % len(HOSTILE_CAMPAIGNS)]
    return renamed[value]


def test_data_in_the_report_is_text_only(hostile_report: Path, browser: Browser) -> None:
    page_text = hostile_report.read_text()
    assert set(plotted(page_text)) == set(CHARTS)
    errors: list[str] = []
    with drawn_page(browser, hostile_report, errors) as page:
        page.hover("#chart-campaigns .nsewdrag")
        found: dict[str, Any] = page.evaluate(IN_THE_PAGE)
    assert errors == []  # no dialog, no script error, no policy violation
    assert found["svgLinks"] == 0 and found["images"] == 0 and found["evil"] == [], found
    # Shown as the text it is: in the legend and as the bands chart's subplot title.
    assert HOSTILE_SITE in found["legend"], found["legend"]
    assert HOSTILE_SITE in found["titles"], found["titles"]


def test_only_the_pages_own_scripts_run(report: Path, browser: Browser, tmp_path: Path) -> None:
    """script-src names each of the page's scripts by its hash: a script that got into the
    page any other way (a tag from the data, were one ever left unescaped) does not run,
    while plotly.js and the charts' own scripts do."""
    smuggled = tmp_path / "smuggled.html"
    injected = (
        "<script>document.title = 'pwned'</script><img src=x onerror=\"document.title='pwned'\">"
    )
    smuggled.write_text(report.read_text().replace("</main>", injected + "</main>"))
    errors: list[str] = []
    with drawn_page(browser, smuggled, errors) as page:
        title = page.title()
    assert title.startswith("sessionflow report"), title
    assert any("Content Security Policy" in error for error in errors), errors
