"""Text an anonymous visitor chose reaches the operator's tools and does nothing there.

utm_campaign is whatever a visitor's link said: a paid (`utm_medium=cpc`) visit with a
campaign that no cost row names fails the "paid sessions without a cost row" check, so
`run daily` exits 4 and names the campaign; a cost file's campaign is listed by "costs
without sessions". End to end, as the operator runs it: `import` -> `costs load` ->
`run daily` (the CLI line and the Prefect markdown artifact) -> `query --format
csv|table|json` -> `report`. Nothing from the data acts: no formula cell, no control
character on the terminal, no link, image, HTML or table break in the markdown, lists
capped at 10 names, each cut, and no tag from the data in the report's charts.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from pipeline.safe_text import MAX_LISTED, MAX_NAME_CHARS
from tests.conftest import _shared_prefect, clean_env, run_cli
from tests.integration.conftest import running_collector
from tests.integration.test_collector import IPHONE
from tests.unit.warehouse.report_support import plotted

DAY = date(2026, 11, 1)
LONG = "l" * 256  # the longest utm_campaign accepted (lower case, as attribution stores it)
# Each a paid campaign without a cost row: more than MAX_LISTED of them.
CAMPAIGNS = [
    '=HYPERLINK("http://evil.example/x","click me")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\x1b]0;owned title\x07",
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "ok\rFAKE: all checks passed",
    "![x](http://evil.example/x.png)",
    "[click](http://evil.example)",
    "a | b | c",
    '<a href="http://evil.example/">site</a>',
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">js</a>',
    "\u202eevil",
    LONG,
]
# These three have cost rows too, so the report draws them; the other 12 have none.
COSTED = CAMPAIGNS[10:13]
UNCOSTED = len(CAMPAIGNS) - len(COSTED)
COST_CAMPAIGN = '=HYPERLINK("http://evil.example/c","c")\x1b]0;cost\x07'  # no sessions
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# What no stdout or stderr line may hold: C0 controls other than the line break, DEL, C1.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def events(path: Path) -> Path:
    stamp = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    lines = [
        json.dumps(
            {
                "event_id": f"e{index}",
                "event_name": "page_view",
                "event_ts": stamp.isoformat().replace("+00:00", "Z"),
                "site_id": "shop.example",
                "visitor_id": f"v{index}",
                "page_url": "https://shop.example/",
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": campaign,
            }
        )
        for index, campaign in enumerate(CAMPAIGNS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def costs(path: Path) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["date", "site_id", "source", "medium", "campaign", "cost", "currency"])
        for campaign in [COST_CAMPAIGN, *COSTED]:
            writer.writerow(
                [DAY.isoformat(), "shop.example", "google", "cpc", campaign, "10", "USD"]
            )
    return path


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The hostile day imported, costed and built: `run daily`'s result and the env."""
    root = tmp_path_factory.mktemp("hostile")
    env = clean_env(SESSIONFLOW_DATA_DIR=str(root / "data"))
    imported = run_cli(env, "import", str(events(root / "events.jsonl")))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    loaded = run_cli(env, "costs", "load", str(costs(root / "costs.csv")))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    daily = run_cli(env, "run", "daily", "--date", DAY.isoformat())
    yield {"env": env, "daily": daily, "root": root}


def assert_no_raw_control(text: str) -> None:
    found = RAW_CONTROL.search(text)
    assert found is None, f"raw {found.group()!r} in {text[max(0, found.start() - 60) :][:160]!r}"


def test_run_daily_names_the_campaigns_inertly_and_few_of_them(hostile: dict[str, Any]) -> None:
    daily = hostile["daily"]
    assert daily.returncode == 4, daily.stdout + daily.stderr
    assert_no_raw_control(daily.stdout)
    assert_no_raw_control(daily.stderr)
    (paid,) = [line for line in daily.stdout.splitlines() if "paid sessions without" in line]
    assert paid.strip().startswith(
        f"[FAIL] paid sessions without a cost row: {UNCOSTED} paid sessions in {UNCOSTED} groups"
    )
    assert paid.endswith(f" and {UNCOSTED - MAX_LISTED} more")
    assert len(paid) < MAX_LISTED * (MAX_NAME_CHARS + 2) + 200
    assert LONG[: MAX_NAME_CHARS * 2] not in daily.stdout  # the long name is cut
    # Validation stripped the visitor's control characters at ingestion; the cost file's
    # (not an event) reach the warehouse and are shown escaped.
    assert "]0;owned title" in paid and "\\x1b]0;owned" not in paid
    (unmatched,) = [line for line in daily.stdout.splitlines() if "costs without sessions" in line]
    assert "\\x1b]0;cost\\x07" in unmatched


def quality_artifact(day: date) -> str:
    """The quality artifact `run daily` made for `day`, from the Prefect server's API."""
    response = httpx.post(
        f"{_shared_prefect.api_url()}/artifacts/filter",
        json={"artifacts": {"key": {"any_": [f"quality-{day.isoformat()}"]}},
              "sort": "CREATED_DESC", "limit": 1},
        timeout=30,
    )  # fmt: skip
    response.raise_for_status()
    (artifact,) = response.json()
    markdown: str = artifact["data"]
    return markdown


def test_the_prefect_artifact_shows_text_not_links_images_html_or_table_breaks(
    hostile: dict[str, Any],
) -> None:
    assert hostile["daily"].returncode == 4
    markdown = quality_artifact(DAY)
    assert_no_raw_control(markdown)
    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    for tag in ("<a ", "<img", "<script", "<strong>click", "<em>"):
        assert tag not in rendered, tag
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rendered.count("<tr>") == len(rows)  # header + one per check, none broken
    assert all(row.count("<td>") == 3 for row in rendered.split("<tr>")[2:])
    (paid,) = [row for row in rows if row.startswith("| paid sessions")]
    assert paid.rstrip(" |").endswith(f"and {UNCOSTED - MAX_LISTED} more")
    assert len(paid) < 3 * MAX_LISTED * (MAX_NAME_CHARS + 2)  # escapes at most double


def query(env: dict[str, str], output: str, sql: str) -> str:
    result = run_cli(env, "query", "--format", output, sql)
    assert result.returncode == 0, result.stderr
    assert_no_raw_control(result.stdout)
    assert_no_raw_control(result.stderr)
    return result.stdout


CAMPAIGN_ROWS = "SELECT campaign, sessions, -1.5 AS loss FROM daily_cost_per_session ORDER BY ALL"


def test_query_csv_has_no_formula_cell(hostile: dict[str, Any]) -> None:
    text = query(hostile["env"], "csv", CAMPAIGN_ROWS)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == len(CAMPAIGNS) + 2  # the header, every campaign and the cost's
    for row in rows:
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                float(cell)  # only a number may start with "-": -1.5 stays a number
    campaigns = [row[0] for row in rows[1:]]
    assert '\'=hyperlink("http://evil.example/x","click me")' in campaigns
    assert "'-2+3" in campaigns  # text, though it looks like a sum
    frame = pd.read_csv(io.StringIO(text))
    assert frame["loss"].tolist() == [-1.5] * len(frame)  # a number stays a number
    texts = [cell for cell in frame["campaign"] if isinstance(cell, str)]
    assert texts and not [cell for cell in texts if cell.startswith(FORMULA_STARTS)]


def test_query_table_and_json_show_the_text_without_acting(hostile: dict[str, Any]) -> None:
    table = query(hostile["env"], "table", CAMPAIGN_ROWS)
    # The cost file's campaign keeps its control characters (events' are stripped at
    # ingestion): the table shows them escaped.
    assert "\\x1b]0;cost\\x07" in table
    assert f"({len(CAMPAIGNS) + 1} rows)" in table
    as_json = json.loads(query(hostile["env"], "json", CAMPAIGN_ROWS))
    # JSON keeps the data exactly (its escapes are inert on a terminal).
    assert any("\x1b]0;cost\x07" in row["campaign"] for row in as_json)


def test_the_report_draws_no_tag_from_the_data(hostile: dict[str, Any]) -> None:
    out = hostile["root"] / "report.html"
    written = run_cli(hostile["env"], "report", "--out", str(out))
    assert written.returncode == 0, written.stderr
    assert_no_raw_control(written.stdout)
    page = out.read_text()
    figures = plotted(page)
    strings = list(_strings(figures))
    assert any("evil.example" in text for text in strings)  # the campaigns are there
    for text in strings:
        assert "<a" not in text and "<img" not in text, text


def _strings(value: Any) -> Iterator[str]:
    """Every text a figure hands plotly.js to draw, except its own templates' tags."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in ("meta", "hovertemplate"):
                yield from _strings(item)
            elif key == "hovertemplate":
                yield re.sub(r"<br>|</?extra>", "", item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


# Short enough to be listed whole (a listed name is cut at MAX_NAME_CHARS).
ANONYMOUS_CAMPAIGN = '=HYPERLINK("//e.example")[go](http://e.example)|x'


def test_one_anonymous_paid_hit_through_the_collector(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The issue's attack as it happens: one anonymous browser hit with utm_medium=cpc and
    a formula, a link and a table break for a campaign, through the collector process, the
    broker and the consumer, fails `run daily`'s paid-sessions check; the CLI line, the
    Prefect artifact and the csv show it inertly."""
    today = datetime.now(UTC).date()
    landing = str(
        httpx.URL(
            "https://shop.example/sale",
            params={
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": ANONYMOUS_CAMPAIGN,
            },
        )
    )
    with running_collector(kafka_bootstrap, tmp_path) as collector:
        answer = httpx.post(
            f"{collector.url}/api/event",
            content=json.dumps({"name": "page_view", "url": landing}),
            headers={"User-Agent": IPHONE, "Content-Type": "text/plain",
                     "X-Forwarded-For": "198.51.100.7"},
            timeout=10,
        )  # fmt: skip
        assert answer.status_code == 202, answer.text
        env = collector.env
    consumed = run_cli(env, "consume", "--until-caught-up")
    assert consumed.returncode == 0, consumed.stderr
    cost_file = tmp_path / "costs.csv"
    cost_file.write_text(
        f"date,site_id,source,medium,campaign,cost,currency\n{today},shop.example,google,cpc,brand,5,USD\n"
    )
    assert run_cli(env, "costs", "load", str(cost_file)).returncode == 0
    daily = run_cli(env, "run", "daily", "--date", today.isoformat())
    assert daily.returncode == 4, daily.stdout + daily.stderr
    assert_no_raw_control(daily.stdout + daily.stderr)
    (paid,) = [line for line in daily.stdout.splitlines() if "paid sessions without" in line]
    assert "1 paid sessions in 1 groups have no cost row: google/cpc/=hyperlink(" in paid
    rendered = MarkdownIt("commonmark").enable("table").render(quality_artifact(today))
    assert "<a " not in rendered
    assert all(row.count("<td>") == 3 for row in rendered.split("<tr>")[2:])
    cells = next(
        csv.reader(
            io.StringIO(
                query(
                    env, "csv", "SELECT campaign FROM daily_sessions WHERE medium = 'cpc'"
                ).splitlines()[1]
            )
        )
    )
    assert cells[0].startswith("'=hyperlink(")
