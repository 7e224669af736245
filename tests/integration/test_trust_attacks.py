"""Anonymous traffic cannot cancel or devalue a shop's authenticated purchases, refund an
anonymous purchase more than once, or devalue goals: the attacks of issue 20 (item 1)
through the running product, a collector process on the real broker, `sessionflow
consume`, `sessionflow run daily` and `sessionflow query`.

shop.example and blog.example each have a GA4 stream with an api_secret, so their
/mp/collect events are authenticated; /g/collect and /api/event are anonymous. blog.example
counts purchases and refunds from authenticated routes only (anonymous_purchases = false).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import run_cli
from tests.integration.conftest import RunningCollector, running_collector
from tests.integration.test_collector_ga4_retry import wait_until_delivered
from tests.unit.collector.test_ingestion import CHROME

SHOP_SECRET = "shop-secret-20-a"
BLOG_SECRET = "blog-secret-20-b"
CONFIG = f"""
[ga4."shop.example"]
measurement_id = "G-SHOP1234"
api_secret = "{SHOP_SECRET}"

[ga4."blog.example"]
measurement_id = "G-BLOG1234"
api_secret = "{BLOG_SECRET}"

[site."blog.example"]
anonymous_purchases = false
"""
BROWSER = {"user-agent": CHROME, "x-forwarded-for": "198.51.100.23"}


@pytest.fixture
def collector(kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningCollector]:
    config = tmp_path / "sessionflow.toml"
    config.write_text(CONFIG)
    with running_collector(kafka_bootstrap, tmp_path, SESSIONFLOW_CONFIG=str(config)) as running:
        yield running


def mp(
    collector: RunningCollector, site: str, secret: str, client: str, *events: Any
) -> httpx.Response:
    """The shop's server: a Measurement Protocol request with its api_secret."""
    query = urlencode({"measurement_id": site, "api_secret": secret})
    body = {"client_id": client, "events": list(events)}
    return httpx.post(f"{collector.url}/mp/collect?{query}", json=body, timeout=10)


def purchase(value: float, transaction_id: str, **params: Any) -> dict[str, Any]:
    return {"name": "purchase", "params": {"value": value, "currency": "USD",
                                           "transaction_id": transaction_id, **params}}  # fmt: skip


def gtag(collector: RunningCollector, **params: str) -> httpx.Response:
    """A browser's gtag.js beacon: anyone can send one."""
    query = urlencode({"v": "2", "cid": "555.666", "dl": "https://shop.example/", **params})
    return httpx.get(f"{collector.url}/g/collect?{query}", headers=BROWSER, timeout=10)


def plausible(collector: RunningCollector, body: dict[str, Any]) -> httpx.Response:
    """A Plausible tracker's body to /api/event: anyone can send one."""
    headers = {**BROWSER, "content-type": "text/plain"}
    return httpx.post(f"{collector.url}/api/event", content=json.dumps(body), headers=headers)


def plausible_purchase(site: str, amount: str, transaction_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"n": "purchase", "u": f"https://{site}/checkout", "d": site,
                            "$": {"amount": amount, "currency": "USD"}}  # fmt: skip
    if transaction_id is not None:
        body["p"] = {"transaction_id": transaction_id}
    return body


def ok(result: subprocess.CompletedProcess[str], *codes: int) -> str:
    assert result.returncode in (codes or (0,)), result.stdout + result.stderr
    return result.stdout


def consume_and_build(collector: RunningCollector, days: set[str]) -> list[int]:
    ok(run_cli(collector.env, "consume", "--until-caught-up"))
    return [
        run_cli(collector.env, "run", "daily", "--date", day).returncode for day in sorted(days)
    ]


def revenue_by_site(collector: RunningCollector) -> dict[str, float]:
    sql = "SELECT site_id, sum(revenue) AS revenue FROM daily_site_summary GROUP BY site_id"
    rows = json.loads(ok(run_cli(collector.env, "query", "--format", "json", sql)))
    return {row["site_id"]: float(row["revenue"]) for row in rows}


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_anonymous_traffic_cannot_cancel_or_devalue_authenticated_purchases(
    collector: RunningCollector,
) -> None:
    days = {today()}
    # (a) A gtag page view takes the shop's order id as its event id (the shop's
    # authenticated purchase with that event id comes later).
    assert gtag(collector, tid="G-SHOP1234", en="page_view", **{"ep.event_id": "order-1001"}
                ).status_code == 204  # fmt: skip
    # (b) Plausible bodies pre-register transaction ids 1001 and 1002 at 0.01.
    for transaction_id in ("1001", "1002"):
        answer = plausible(collector, plausible_purchase("shop.example", "0.01", transaction_id))
        assert answer.status_code == 202, answer.text
    # They are in the lake before the shop's events arrive.
    wait_until_delivered(collector, 3, timeout_s=60)
    ok(run_cli(collector.env, "consume", "--until-caught-up"))
    # (a) The shop's authenticated purchase with the event id the page view took.
    answer = mp(collector, "G-SHOP1234", SHOP_SECRET, "111.222",
                purchase(499, "A-1001", event_id="order-1001"))  # fmt: skip
    assert answer.status_code == 204, answer.text
    # (b) The shop's two authenticated 499 orders with the pre-registered ids.
    for client, transaction_id in (("333.444", "1001"), ("777.888", "1002")):
        answer = mp(collector, "G-SHOP1234", SHOP_SECRET, client, purchase(499, transaction_id))
        assert answer.status_code == 204, answer.text
    # (d) blog.example takes purchases from its server only: anonymous ones are refused
    # with their reason, its authenticated one counts.
    refused = [
        plausible(collector, plausible_purchase("blog.example", "25")),
        gtag(collector, tid="G-BLOG1234", en="purchase", cu="USD", **{"epn.value": "25"}),
    ]
    assert [r.status_code for r in refused] == [400, 400]
    assert [r.json()["reason"] for r in refused] == ["anonymous_purchase"] * 2
    answer = mp(collector, "G-BLOG1234", BLOG_SECRET, "999.000", purchase(30, "B-1"))
    assert answer.status_code == 204, answer.text
    # (e) An anonymous 40,000 order, refunded whole five times by Plausible bodies and
    # once by a gtag beacon: together the refunds return it once.
    answer = plausible(collector, plausible_purchase("shop.example", "40000", "T-2"))
    assert answer.status_code == 202, answer.text
    refund = {"n": "refund", "u": "https://shop.example/checkout", "d": "shop.example",
              "p": {"transaction_id": "T-2"}}  # fmt: skip
    assert [plausible(collector, refund).status_code for _ in range(5)] == [202] * 5
    assert gtag(collector, tid="G-SHOP1234", en="refund", **{"ep.transaction_id": "T-2"}
                ).status_code == 204  # fmt: skip
    # (f) An anonymous goal event cannot carry a negative value.
    negative = plausible(collector, {"name": "sign_up", "url": "https://shop.example/",
                                     "site_id": "shop.example", "value": -40000,
                                     "currency": "USD"})  # fmt: skip
    assert (negative.status_code, negative.json()["reason"]) == (400, "negative_amount")
    # gtag page view, purchase (a); 2 Plausible + 2 MP purchases (b); 1 MP purchase (d);
    # 1 purchase and 6 refunds (e).
    wait_until_delivered(collector, 14, timeout_s=60)
    days.add(today())

    assert set(consume_and_build(collector, days)) <= {0, 4}
    assert revenue_by_site(collector) == {"shop.example": 41497, "blog.example": 30}
    sql = (
        "SELECT sum(refunds) AS refunds, sum(net_revenue) AS net FROM daily_site_summary "
        "WHERE site_id = 'shop.example'"
    )
    [shop] = json.loads(ok(run_cli(collector.env, "query", "--format", "json", sql)))
    assert (float(shop["refunds"]), float(shop["net"])) == (40000, 1497)

    # (c) A purchase of 9e15, from the shop's own server or from a browser: refused with
    # its reason, nothing reaches Kafka, and the day still builds with the same numbers.
    huge = [
        mp(collector, "G-SHOP1234", SHOP_SECRET, "121.212", purchase(9e15, "C-1")),
        plausible(collector, plausible_purchase("shop.example", "9000000000000000")),
    ]
    assert [r.status_code for r in huge] == [400, 400]
    assert [r.json()["reason"] for r in huge] == ["value_too_large"] * 2
    health = httpx.get(f"{collector.url}/health", timeout=5).json()
    assert health["delivered"] == 14, health
    days.add(today())
    assert set(consume_and_build(collector, days)) <= {0, 4}
    assert revenue_by_site(collector) == {"shop.example": 41497, "blog.example": 30}
