"""Nobody can be anyone: the client address (the cookie-free visitor id hashes it) and the
country come from the connection's peer, or from trusted proxies only. Through a real
`sessionflow collect` on the test broker; every client here is on loopback, so the test
either stands for the client itself (no trusted proxies) or for a trusted proxy."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx

from tests.integration.conftest import RunningCollector, events_of, read_topic, running_collector

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def visits(collector: RunningCollector, forwarded: list[str | None]) -> list[dict[str, object]]:
    """One page view per X-Forwarded-For value (None: no header), all from one browser
    with a country header; their canonical events, in the order sent."""
    markers = [uuid.uuid4().hex for _ in forwarded]
    with httpx.Client(base_url=collector.url, timeout=30) as http:
        for marker, value in zip(markers, forwarded, strict=True):
            headers = {"User-Agent": CHROME, "CF-IPCountry": "DE", "Content-Type": "text/plain"}
            if value is not None:
                headers["X-Forwarded-For"] = value
            body = {"name": "page_view", "url": f"https://shop.example/m/{marker}"}
            assert (
                http.post("/api/event", content=json.dumps(body), headers=headers).status_code
                == 202
            )
    by_marker = {
        str(event["page_url"]).rsplit("/", 1)[1]: event
        for event in events_of(read_topic(collector.bootstrap, collector.topic, len(markers)))
    }
    return [by_marker[marker] for marker in markers]


def test_without_trusted_proxies_forwarded_and_country_headers_count_for_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with running_collector(
        kafka_bootstrap, tmp_path, SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES="[]"
    ) as collector:
        # One host writing a new left-most address each time (before: a visitor each).
        events = visits(collector, [f"198.51.100.{n}" for n in range(1, 6)] + [None])
    visitors = {event["visitor_id"] for event in events}
    print(f"\none host, 6 forged X-Forwarded-For values: {len(visitors)} visitor(s)")
    assert len(visitors) == 1
    assert all("country" not in event for event in events)  # the header came from anyone


def test_behind_trusted_proxies_the_client_is_the_right_most_untrusted_entry(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    trusted = '["127.0.0.1", "10.0.0.0/8"]'
    with running_collector(
        kafka_bootstrap, tmp_path, SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES=trusted
    ) as collector:
        victim, forged, attacker, chain, inner, garbage, direct = visits(
            collector,
            [
                "203.0.113.7",  # the victim, as the proxy saw them
                "203.0.113.7, 198.51.100.66",  # the attacker writes the victim's address
                "198.51.100.66",  # the attacker, as the proxy saw them
                "192.0.2.1, 198.51.100.2, 10.1.2.3",  # through two proxies of ours
                "198.51.100.2",
                "not-an-ip",  # garbage: the peer (the proxy itself)
                None,
            ],
        )
    assert forged["visitor_id"] != victim["visitor_id"]
    assert forged["visitor_id"] == attacker["visitor_id"]
    assert chain["visitor_id"] == inner["visitor_id"]
    assert garbage["visitor_id"] == direct["visitor_id"] != victim["visitor_id"]
    assert victim["country"] == "DE"  # a trusted proxy's header counts
