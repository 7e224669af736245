from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.collector.enrichment import Dropped, Ingestor, RequestContext
from pipeline.collector.ga4 import parse_ga4
from pipeline.collector.hits import Hit
from pipeline.collector.plainsignal import parse_plainsignal
from pipeline.config import Settings, load_settings
from pipeline.events.reasons import Rejected
from pipeline.events.timestamps import parse_event_ts

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
NOW = parse_event_ts("2026-11-20T12:00:00Z")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        environ={
            "SESSIONFLOW_DATA_DIR": str(tmp_path),
            "SESSIONFLOW_SITES": '["shop.example"]',
            "SESSIONFLOW_PRIVACY__RESPECT_OPT_OUT": "true",
            "SESSIONFLOW_PRIVACY__COUNTRY_HEADER": "CF-IPCountry",
        }
    )


def request(**headers: str) -> RequestContext:
    """A request through a trusted proxy (its headers count)."""
    merged = {"user-agent": CHROME, **{k.lower(): v for k, v in headers.items()}}
    return RequestContext("198.51.100.9", merged["user-agent"], merged, NOW, True)


def plainsignal(body: dict[str, object]) -> Hit:
    return parse_plainsignal(json.dumps(body).encode())


def test_plainsignal_site_defaults_to_host_without_www(settings: Settings) -> None:
    event = Ingestor(settings).to_canonical(
        plainsignal({"name": "page_view", "url": "https://www.shop.example/a?x=1"}), request()
    )
    assert event["site_id"] == "shop.example"
    assert event["page_url"] == "https://www.shop.example/a"
    assert event["device_category"] == "desktop"
    assert len(event["visitor_id"]) == 32
    assert event["event_ts"] == "2026-11-20T12:00:00.000000Z"


def test_country_only_from_the_trusted_header(settings: Settings) -> None:
    ingest = Ingestor(settings).to_canonical
    hit = plainsignal({"name": "x", "url": "https://shop.example/"})
    assert ingest(hit, request(**{"CF-IPCountry": "fr"}))["country"] == "FR"
    assert "country" not in ingest(hit, request(**{"CF-IPCountry": "T1"}))  # Tor: unknown
    assert "country" not in ingest(hit, request())
    # Not through a trusted proxy: anyone could have written the header.
    direct = replace(request(**{"CF-IPCountry": "fr"}), via_trusted_proxy=False)
    assert "country" not in ingest(hit, direct)


def test_opt_out_signals_drop_when_configured(settings: Settings) -> None:
    hit = plainsignal({"name": "x", "url": "https://shop.example/"})
    for header in ({"Sec-GPC": "1"}, {"DNT": "1"}):
        with pytest.raises(Dropped, match="opted_out"):
            Ingestor(settings).to_canonical(hit, request(**header))
    respectless = settings.model_copy(
        update={"privacy": settings.privacy.model_copy(update={"respect_opt_out": False})}
    )
    assert Ingestor(respectless).to_canonical(hit, request(**{"Sec-GPC": "1"}))


def test_explicit_campaign_fields_win_over_landing_utm(settings: Settings) -> None:
    body = {
        "client_id": "c1",
        "events": [
            {
                "name": "page_view",
                "params": {
                    "page_location": "https://shop.example/?utm_source=a&utm_medium=b&gclid=zz",
                    "source": "google",
                },
            }
        ],
    }
    (hit,) = parse_ga4("shop.example", json.dumps(body).encode())
    assert isinstance(hit, Hit)
    event = Ingestor(settings).to_canonical(hit, request())
    assert (event["utm_source"], event["utm_medium"]) == ("google", "b")
    assert event["click_id_type"] == "gclid"


def test_ga4_device_and_country_come_from_the_body_not_the_server(settings: Settings) -> None:
    body = {
        "client_id": "c1",
        "timestamp_micros": str(NOW - 1_000_000),
        "device": {"category": "Mobile", "operating_system": "Android", "browser": "Chrome"},
        "user_location": {"country_id": "br"},
        "events": [{"name": "sign_up"}],
    }
    (hit,) = parse_ga4("shop.example", json.dumps(body).encode())
    assert isinstance(hit, Hit)
    # A server-side sender: its user agent would be a "bot"; GA4 hits are not UA-filtered.
    event = Ingestor(settings).to_canonical(hit, request(**{"User-Agent": "python-requests/2.32"}))
    assert (event["device_category"], event["os"], event["country"]) == ("mobile", "Android", "BR")
    assert event["event_ts"] == "2026-11-20T11:59:59.000000Z"


def test_ga4_rejects_per_event_and_per_request() -> None:
    outcomes = parse_ga4(
        "shop.example",
        json.dumps({"client_id": "c", "events": [{"name": "ok"}, {"name": "bad-name"}]}).encode(),
    )
    assert isinstance(outcomes[0], Hit)
    assert isinstance(outcomes[1], Rejected) and outcomes[1].reason == "bad_event_name"
    with pytest.raises(Rejected, match="too_many_events"):
        parse_ga4("s", json.dumps({"client_id": "c", "events": [{"name": "x"}] * 26}).encode())
