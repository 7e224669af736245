"""`import` scrubs page URLs and attributes them exactly as the collector does.

The collector's enrichment and the shared processing path both run
pipeline.privacy.urls.scrub_page_fields, so an event imported from a JSON Lines file lands
with the page fields, source, medium, campaign and channel group that the collector
gives a hit with the same URLs and campaign fields; and no e-mail address reaches Parquet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import pyarrow.parquet as pq
import pytest

from pipeline.collector.enrichment import Ingestor, RequestContext
from pipeline.collector.ga4 import parse_ga4
from pipeline.collector.hits import Hit
from pipeline.config import Settings, load_settings
from pipeline.events.reasons import Rejected
from pipeline.events.timestamps import history_window, parse_event_ts
from pipeline.events.validation import Event
from pipeline.lake.importer import import_file
from pipeline.lake.processing import accept_json
from pipeline.lake.store import events_to_table
from pipeline.sessions.attribution import attribute

NOW = parse_event_ts("2026-11-01T10:00:00Z")
ADDRESS = "jane.doe@example.com"
PAGE_FIELDS = ("page_url", "page_referrer", "click_id_type", "utm_source", "utm_medium",
               "utm_campaign", "utm_term", "utm_content")  # fmt: skip
ATTRIBUTION = ("source", "medium", "campaign", "channel_group")


@dataclass(frozen=True)
class Case:
    page_url: str
    page_referrer: str | None = None
    explicit: dict[str, str] = field(default_factory=dict)  # utm_* fields given as such


CASES = {
    "utm": Case(
        "https://shop.example/landing?utm_source=Newsletter&utm_medium=email"
        "&utm_campaign=Spring%20Sale&session=abc123#top",
    ),
    "gclid": Case(
        "https://www.shop.example/shoes?gclid=EAIaIQobChMI8&size=42",
        page_referrer="https://www.google.com/",
    ),
    "explicit": Case(
        "https://shop.example/?utm_source=facebook&utm_medium=social&utm_campaign=summer"
        "&utm_content=banner&fbclid=IwAR0",
        explicit={"utm_source": "google", "utm_medium": "cpc"},
    ),
    "email": Case(
        f"https://shop.example/u/{ADDRESS}/orders?email={ADDRESS}"
        "&utm_source=jane.doe%40example.com&utm_medium=referral",
        page_referrer=f"https://mail.example/inbox?to={ADDRESS}",
    ),
    "plain": Case("https://shop.example/about", page_referrer="https://duckduckgo.com/"),
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "SESSIONFLOW_DATA_DIR": str(tmp_path / "data"),
            "SESSIONFLOW_SITES": '["shop.example"]',
        }
    )


def historical_event(name: str, number: int, case: Case) -> Event:
    """A canonical event as a historical export holds it: raw URLs, explicit utm fields."""
    event: Event = {
        "event_id": name,
        "event_name": "page_view",
        "event_ts": NOW + number * 1_000_000,
        "site_id": "shop.example",
        "visitor_id": f"visitor-{name}",
        "page_url": case.page_url,
        **case.explicit,
    }
    if case.page_referrer is not None:
        event["page_referrer"] = case.page_referrer
    return event


def collector_event(settings: Settings, case: Case) -> Event:
    """What the collector makes of a GA4 hit with the same URLs and campaign fields."""
    ga4_names = {"utm_source": "source", "utm_medium": "medium", "utm_campaign": "campaign"}
    params: dict[str, Any] = {ga4_names[key]: value for key, value in case.explicit.items()}
    params["page_location"] = case.page_url
    if case.page_referrer is not None:
        params["page_referrer"] = case.page_referrer
    body = {"client_id": "c1", "events": [{"name": "page_view", "params": params}]}
    (hit,) = parse_ga4("shop.example", json.dumps(body).encode())
    assert isinstance(hit, Hit)
    request = RequestContext("198.51.100.9", "python-requests/2.32", {}, NOW)
    return Ingestor(settings).to_canonical(hit, request)


def attribution_of(event: Event) -> dict[str, Any]:
    rows: list[dict[str, Any]] = (
        attribute(events_to_table([event])).select(list(ATTRIBUTION)).to_pylist()
    )
    (row,) = rows
    return row


def lake_rows(settings: Settings) -> dict[str, dict[str, Any]]:
    pattern = str(settings.lake_dir / "events" / "event_date=*" / "*.parquet")
    table = duckdb.execute("SELECT * FROM read_parquet(?)", [pattern]).to_arrow_table()
    return {row["event_id"]: row for row in table.to_pylist()}


def write_jsonl(path: Path, records: list[Event]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_imported_events_get_the_collectors_page_fields_and_attribution(
    settings: Settings, tmp_path: Path
) -> None:
    events = [historical_event(name, n, case) for n, (name, case) in enumerate(CASES.items())]
    source = write_jsonl(tmp_path / "history.jsonl", events)

    report = import_file(settings, source, lambda _: None)

    assert (report.accepted, report.rejected) == (len(CASES), 0)
    landed = lake_rows(settings)
    for name, case in CASES.items():
        expected = collector_event(settings, case)
        row = landed[name]
        assert {key: row[key] for key in PAGE_FIELDS} == {
            key: expected.get(key) for key in PAGE_FIELDS
        }, name
        assert {key: row[key] for key in ATTRIBUTION} == attribution_of(expected), name

    # The same rule, spelled out.
    assert landed["utm"]["page_url"] == (
        "https://shop.example/landing?utm_source=Newsletter&utm_medium=email"
        "&utm_campaign=Spring+Sale"
    )
    assert [landed["utm"][key] for key in ATTRIBUTION] == [
        "newsletter", "email", "spring sale", "Email"
    ]  # fmt: skip
    assert landed["gclid"]["page_url"] == "https://www.shop.example/shoes"
    assert landed["gclid"]["click_id_type"] == "gclid"
    assert [landed["gclid"][key] for key in ATTRIBUTION] == [
        "google", "cpc", "(not set)", "Paid Search"
    ]  # fmt: skip
    # Explicit fields win; what they leave out still comes from the landing page.
    explicit = landed["explicit"]
    assert (explicit["utm_source"], explicit["utm_medium"]) == ("google", "cpc")
    assert (explicit["utm_campaign"], explicit["utm_content"]) == ("summer", "banner")
    assert explicit["click_id_type"] == "fbclid"
    assert [explicit[key] for key in ATTRIBUTION] == ["google", "cpc", "summer", "Paid Search"]
    assert landed["email"]["utm_source"] == "[email]"
    assert landed["plain"]["page_url"] == "https://shop.example/about"
    assert landed["plain"]["channel_group"] == "Organic Search"


def test_parquet_input_gets_the_same_page_fields(tmp_path: Path) -> None:
    events = [historical_event(name, n, case) for n, (name, case) in enumerate(CASES.items())]
    parquet_path = tmp_path / "history.parquet"
    pq.write_table(events_to_table(events), parquet_path)
    from_parquet = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path / "a")})
    from_json = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path / "b")})

    assert import_file(from_parquet, parquet_path, lambda _: None).accepted == len(CASES)
    import_file(from_json, write_jsonl(tmp_path / "history.jsonl", events), lambda _: None)

    columns = (*PAGE_FIELDS, *ATTRIBUTION)
    assert {
        name: [row[key] for key in columns] for name, row in lake_rows(from_parquet).items()
    } == {name: [row[key] for key in columns] for name, row in lake_rows(from_json).items()}
    assert lake_rows(from_parquet)["email"]["utm_source"] == "[email]"


def test_no_email_address_reaches_parquet(settings: Settings, tmp_path: Path) -> None:
    case = CASES["email"]
    records: list[Event] = [
        historical_event("email", 0, case),
        # Not an absolute http(s) URL: rejected, and the rejected payload is redacted too.
        {**historical_event("mailto", 1, case), "page_url": f"mailto:{ADDRESS}"},
    ]
    source = write_jsonl(tmp_path / "history.jsonl", records)

    report = import_file(settings, source, lambda _: None)

    assert (report.accepted, report.rejected) == (1, 1)
    files = sorted(settings.lake_dir.rglob("*.parquet"))
    assert {path.relative_to(settings.lake_dir).parts[0] for path in files} == {
        "events", "rejected"
    }  # fmt: skip
    for path in files:
        text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        assert ADDRESS not in text and ADDRESS not in unquote(text), path
        assert "jane.doe" not in text, path
    row = lake_rows(settings)["email"]
    assert row["page_url"] == (
        "https://shop.example/u/[email]/orders?utm_source=[email]&utm_medium=referral"
    )
    assert row["page_referrer"] == "https://mail.example/inbox"


def test_a_page_url_that_is_not_an_absolute_http_url_is_rejected_with_its_reason(
    settings: Settings, tmp_path: Path
) -> None:
    base = historical_event("ok", 0, CASES["plain"])
    records: list[Event] = [
        base,
        {**base, "event_id": "relative", "page_url": "/checkout?email=x"},
        {**base, "event_id": "app", "page_url": "android-app://com.example.shop/home"},
        # A referrer that is not one is dropped, as the collector drops it.
        {**base, "event_id": "app-referrer", "page_referrer": "android-app://com.google.gm"},
        {**base, "event_id": "empty", "page_url": ""},
    ]
    source = write_jsonl(tmp_path / "history.jsonl", records)

    report = import_file(settings, source, lambda _: None)

    assert (report.accepted, report.rejected) == (3, 2)
    assert report.reject_lines == [
        "line 2: bad_url: page url must be an absolute http(s) URL",
        "line 3: bad_url: page url must be an absolute http(s) URL",
    ]
    landed = lake_rows(settings)
    assert sorted(landed) == ["app-referrer", "empty", "ok"]
    assert landed["app-referrer"]["page_referrer"] is None
    assert landed["app-referrer"]["channel_group"] == "Direct"
    assert landed["empty"]["page_url"] is None


def test_a_utm_value_too_long_for_its_field_is_rejected_as_the_collector_rejects_it(
    settings: Settings, tmp_path: Path
) -> None:
    long_url = "https://shop.example/?utm_campaign=" + "c" * 300
    records: list[Event] = [historical_event("long", 0, Case(long_url))]
    report = import_file(settings, write_jsonl(tmp_path / "h.jsonl", records), lambda _: None)
    assert report.reject_lines == ["line 1: too_long: utm_campaign is longer than 256 characters"]
    with pytest.raises(Rejected, match="too_long: utm_campaign is longer than 256"):
        collector_event(settings, Case(long_url))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_collectors_events_pass_the_consumer_unchanged(settings: Settings, name: str) -> None:
    """What the collector sent to Kafka is already scrubbed: a second pass is a no-op."""
    sent = collector_event(settings, CASES[name])
    accepted = accept_json(
        json.dumps(sent).encode(), "topic/0/1", now=NOW, window=history_window(settings.validation)
    )
    assert accepted == {**sent, "event_ts": parse_event_ts(sent["event_ts"])}
