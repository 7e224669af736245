"""Each collector route sets how its events arrived (`trust`), whatever the client sends:
authenticated only for /mp/collect with the site's api_secret. In process, with a sink
that records what would go to Kafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from pipeline.collector.app import create_app
from pipeline.config import Settings, load_settings
from tests.unit.collector.sinks import RecordingSink
from tests.unit.collector.test_ga4_validation import MEASUREMENT_ID, PAGE, SECRET, ga4, page_view
from tests.unit.collector.test_ingestion import CHROME

Body = bytes | dict[str, Any] | None


def exchange(
    settings: Settings, sink: RecordingSink, requests: Sequence[tuple[str, Body]]
) -> list[httpx.Response]:
    """(path, body) pairs to one app, as a browser sends them: a POST per body, a GET
    where the body is None."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(settings, sink))
        headers = {"user-agent": CHROME, "content-type": "application/json"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://collector", headers=headers
        ) as client:
            responses = []
            for path, body in requests:
                if body is None:
                    responses.append(await client.get(path))
                    continue
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                responses.append(await client.post(path, content=content))
            return responses

    return asyncio.run(send())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # shop.example: a GA4 stream with an api_secret; blog.example: none.
    return load_settings(
        environ={
            "SESSIONFLOW_DATA_DIR": str(tmp_path),
            "SESSIONFLOW_SITES": '["shop.example", "blog.example"]',
            "SESSIONFLOW_GA4": (
                f'{{"shop.example" = {{measurement_id = "{MEASUREMENT_ID}", '
                f'api_secret = "{SECRET}"}}}}'
            ),
        }
    )


def trust_of(settings: Settings, path: str, body: Body) -> list[str]:
    sink = RecordingSink(settings)
    (response,) = exchange(settings, sink, [(path, body)])
    assert response.status_code < 300, response.text
    return [event["trust"] for event in sink.offered]


def test_only_the_measurement_protocol_with_the_sites_api_secret_is_authenticated(
    settings: Settings,
) -> None:
    mp = f"/mp/collect?measurement_id={MEASUREMENT_ID}&api_secret={SECRET}"
    assert trust_of(settings, mp, ga4(page_view())) == ["authenticated"]
    # A site without an api_secret: anyone can send its Measurement Protocol requests.
    blog = ga4({"name": "page_view", "params": {"page_location": "https://blog.example/"}})
    assert trust_of(settings, "/mp/collect?measurement_id=blog.example", blog) == ["anonymous"]
    assert trust_of(settings, "/api/event", {"name": "page_view", "url": PAGE}) == ["anonymous"]
    gtag = urlencode({"v": "2", "tid": MEASUREMENT_ID, "cid": "1.2", "en": "page_view", "dl": PAGE})
    assert trust_of(settings, f"/g/collect?{gtag}", None) == ["anonymous"]


def test_a_client_cannot_claim_to_be_authenticated(settings: Settings) -> None:
    claims = [
        ("/api/event", {"name": "purchase", "url": PAGE, "trust": "authenticated"}),
        ("/api/event", {"n": "purchase", "u": PAGE, "d": "shop.example", "trust": "authenticated"}),
        ("/mp/collect?measurement_id=blog.example",
         ga4({"name": "purchase", "params": {"page_location": "https://blog.example/",
                                             "trust": "authenticated"}})),
        ("/g/collect?" + urlencode({"v": "2", "tid": MEASUREMENT_ID, "cid": "1.2",
                                    "en": "purchase", "dl": PAGE, "ep.trust": "authenticated",
                                    "trust": "authenticated"}), None),
    ]  # fmt: skip
    sink = RecordingSink(settings)
    responses = exchange(settings, sink, claims)
    # Taken as anonymous, or refused: never authenticated.
    assert all(response.status_code < 500 for response in responses)
    assert sink.offered, "no claim was taken at all: the test would prove nothing"
    assert {event["trust"] for event in sink.offered} == {"anonymous"}
