"""Whatever validation accepts, the build accepts: the extremes of every accepted field
(the largest value, the longest names and ids, every currency code the validator takes,
the largest engagement time) through every route (the collector's three protocols, the
SDK by `sessionflow produce`, `sessionflow import`), consumed, then `sessionflow run
daily`: the day builds (exit 0, or 4 for a quality check) and its revenue is what was
sent, converted where a rate is configured."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from pipeline.events.codes import currency_codes
from tests.conftest import free_port, run_cli
from tests.integration.conftest import collector_env, start_collector
from tests.integration.test_collector_ga4_retry import wait_until_delivered
from tests.integration.test_trust_attacks import BROWSER, ok, revenue_by_site

MAX_VALUE = 1_000_000  # [validation] max_event_value's default
RATES = {"EUR": 1.25, "JPY": 0.0078125}  # exact in binary: the sums are exact
# The longest site id the schema takes (253 characters).
SITE = "x" * (253 - len(".example")) + ".example"
PAGE = "https://shop.example/"
API_SECRET = "extremes-api-secret"


def at_most(prefix: str, length: int) -> str:
    """An id or name of exactly `length` characters starting with `prefix`."""
    return (prefix + "-" + uuid.uuid4().hex * 10)[:length]


def bound_in(currency: str) -> float:
    """The largest value validation accepts in `currency` (its own units without a rate)."""
    return MAX_VALUE / RATES.get(currency, 1.0)


def canonical_extremes(route: str, now: datetime) -> list[dict[str, Any]]:
    """A purchase at the bound in every currency, and a page view with every field at its
    longest, as a back end sends them (the SDK and import)."""
    ts = now.isoformat().replace("+00:00", "Z")
    longest: dict[str, Any] = {
        "site_id": SITE,
        "visitor_id": at_most(route, 128),
        "session_id": at_most(route, 128),
        "user_id": at_most(route, 128),
        "page_url": PAGE + "p" * (2048 - len(PAGE)),
        "page_referrer": "https://ref.example/" + "r" * (2048 - len("https://ref.example/")),
        **{f"utm_{part}": at_most(part, 256) for part in ("source", "medium", "campaign",
                                                             "term", "content")},
        "browser": "b" * 64,
        "os": "o" * 64,
        "country": "DE",
        "device_category": "tablet",
        "engagement_time_ms": 31 * 24 * 3600 * 1000,
        "visitor_scope": "client",
    }  # fmt: skip
    events = [{**longest, "event_id": at_most(route, 128), "event_name": at_most("n", 64),
               "event_ts": ts, "value": -MAX_VALUE}]  # fmt: skip
    for code in sorted(currency_codes()):
        events.append({**longest, "event_id": at_most(f"{route}-{code}", 128),
                       "event_name": "purchase", "event_ts": ts, "value": bound_in(code),
                       "currency": code, "transaction_id": at_most(f"{route}{code}", 128)})  # fmt: skip
    return events


def test_the_extremes_of_every_route_build_and_add_up(kafka_bootstrap: str, tmp_path: Path) -> None:
    config = tmp_path / "sessionflow.toml"
    # The Measurement Protocol authenticated by the site's api_secret: an authenticated
    # goal may carry the largest negative value (a correction); an anonymous one, none.
    config.write_text('currency = "USD"\n[currency_rates]\n' + "".join(
        f"{code} = {rate}\n" for code, rate in RATES.items())
        + f'[ga4."{SITE}"]\napi_secret = "{API_SECRET}"\n')  # fmt: skip
    env = collector_env(kafka_bootstrap, tmp_path / "data", free_port(), f"test.{uuid.uuid4().hex[:10]}",
                        SESSIONFLOW_CONFIG=str(config), SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES='["127.0.0.1"]')  # fmt: skip
    env["SESSIONFLOW_SITES"] = json.dumps([SITE])
    collector = start_collector(env, tmp_path / "collector.log")
    try:
        now = datetime.now(UTC)
        sent = 0
        # The Measurement Protocol: GA4's own limits (40-character names, 100-character
        # values, 1000-character page_location).
        mp_events = [
            {"name": "purchase", "params": {"value": MAX_VALUE, "currency": "USD",
                                            "transaction_id": at_most("mp", 100)}},
            {"name": at_most("n", 40).replace("-", "_"), "params": {
                "value": -MAX_VALUE, "page_location": PAGE + "m" * (1000 - len(PAGE))}},
        ]  # fmt: skip
        mp_query = urlencode({"measurement_id": SITE, "api_secret": API_SECRET})
        answer = httpx.post(f"{collector.url}/mp/collect?{mp_query}",
                            json={"client_id": "1.2", "events": mp_events}, timeout=10)  # fmt: skip
        assert answer.status_code == 204, answer.text
        sent += 2
        # gtag.js.
        beacon = {"v": "2", "tid": SITE, "cid": "3.4", "en": "purchase", "cu": "USD",
                  "epn.value": str(MAX_VALUE), "ep.transaction_id": at_most("gt", 100),
                  "dl": PAGE + "g" * (2048 - len(PAGE))}  # fmt: skip
        answer = httpx.get(f"{collector.url}/g/collect?{urlencode(beacon)}", headers=BROWSER)
        assert answer.status_code == 204, answer.text
        sent += 1
        # /api/event: PlainSignal's body and Plausible's.
        bodies = [
            {"name": "purchase", "url": PAGE + "s" * (2048 - len(PAGE)), "site_id": SITE,
             "value": MAX_VALUE, "currency": "USD"},
            # Anonymous: no negative value, so the smallest it takes is 0.
            {"name": at_most("n", 64), "url": PAGE, "site_id": SITE, "value": 0},
            {"n": "purchase", "u": PAGE, "d": SITE,
             "$": {"amount": str(MAX_VALUE), "currency": "USD"},
             "p": {"transaction_id": at_most("pl", 128)}},
        ]  # fmt: skip
        for body in bodies:
            headers = {**BROWSER, "content-type": "text/plain"}
            answer = httpx.post(
                f"{collector.url}/api/event", content=json.dumps(body), headers=headers
            )
            assert answer.status_code == 202, answer.text
            sent += 1
        wait_until_delivered(collector, sent, timeout_s=60)
        # The SDK (`produce --file`) and `import`, every field at its longest.
        for route, command in (("sdk", "produce"), ("import", "import")):
            path = tmp_path / f"{route}.jsonl"
            path.write_text("".join(json.dumps(e) + "\n" for e in canonical_extremes(route, now)))
            args = (
                ("produce", "--file", str(path)) if command == "produce" else ("import", str(path))
            )
            ok(run_cli(env, *args))
        ok(run_cli(env, "consume", "--until-caught-up"))
        days = sorted({now.date().isoformat(), datetime.now(UTC).date().isoformat()})
        for day in days:
            built = run_cli(env, "run", "daily", "--date", day)
            assert built.returncode in (0, 4), built.stdout + built.stderr
        # Purchases at the bound: 4 by the collector (USD), and by the SDK and import each
        # one in USD, EUR and JPY (a rate each); the other currencies have no rate and
        # stay out of the sums (flagged).
        assert revenue_by_site(collector) == {SITE: MAX_VALUE * (4 + 2 * 3)}
    finally:
        collector.stop()
