"""Real marts for the report's tests: generated traffic imported into the lake, the
generated costs loaded, and each day built as `run daily` builds it (no broker)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.build import build_day
from pipeline.warehouse.costs import load_costs

SITES = ("shop.example", "blog.example")
TIMEZONE = "America/New_York"  # the range crosses the end of daylight saving time (Nov 1)
START = date(2026, 10, 25)
DAYS = 10
LAST = START + timedelta(days=DAYS - 1)


def report_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, sites=list(SITES), timezone=TIMEZONE, goals={"sign_up": 5.0})


def settings_environ(settings: Settings) -> dict[str, str]:
    """The environment that gives the CLI these settings."""
    return {
        "SESSIONFLOW_DATA_DIR": str(settings.data_dir),
        "SESSIONFLOW_SITES": json.dumps(settings.sites),
        "SESSIONFLOW_TIMEZONE": settings.timezone,
        "SESSIONFLOW_GOALS__SIGN_UP": "5.0",
    }


def build_marts(root: Path, events_per_day: int = 400) -> Settings:
    settings = report_settings(root / "data")
    config = GeneratorConfig(
        days=DAYS, start=START, seed=7, events_per_day=events_per_day, sites=SITES
    )
    files = write_dataset(config, root / "generated")
    imported = import_file(settings, files.events_path, lambda _: None)
    assert imported.rejected == 0, imported.reject_lines
    load_costs(settings, files.costs_path)
    for offset in range(DAYS):
        build_day(settings, START + timedelta(days=offset))
    return settings


_NEW_PLOT = re.compile(r'Plotly\.newPlot\(\s*"(?P<id>[^"]+)",\s*')


def plotted(page: str) -> dict[str, dict[str, Any]]:
    """div id -> {"data": [...], "layout": {...}} of every figure the page draws, read
    from the JSON plotly's `to_html` hands to Plotly.newPlot."""
    decoder = json.JSONDecoder()
    figures: dict[str, dict[str, Any]] = {}
    for match in _NEW_PLOT.finditer(page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, _after_comma(page, end))
        figures[match["id"]] = {"data": data, "layout": layout}
    return figures


def _after_comma(text: str, position: int) -> int:
    while text[position].isspace():
        position += 1
    assert text[position] == ",", text[position : position + 40]
    position += 1
    while text[position].isspace():
        position += 1
    return position


def traces(figure: dict[str, Any], **meta: str) -> list[dict[str, Any]]:
    """The figure's traces whose `meta` has these values."""
    found: list[dict[str, Any]] = [
        trace
        for trace in figure["data"]
        if all((trace.get("meta") or {}).get(key) == value for key, value in meta.items())
    ]
    return found
