"""No raw IP, user agent, client id or e-mail reaches Kafka or the collector's logs."""

from __future__ import annotations

import json

import httpx

from tests.integration.conftest import RunningCollector, events_of, read_topic

IPS = ["203.0.113.77", "2001:db8::beef:77"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Zq9Marker/1.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Qx7Probe",
]
CLIENT_ID = "client-zq9-4711.1731000000"
USER_ID = "jane.doe.zq9@example.com"
EMAIL = "jane.doe.zq9@example.com"
FULL_NAME = "Janezq9 Doe"
SECRETS = [*IPS, *USER_AGENTS, "Zq9Marker", "Qx7Probe", CLIENT_ID, USER_ID, EMAIL,
           "jane.doe.zq9%40example.com", "gclid-secret-zq9", FULL_NAME]  # fmt: skip
# GA4 user properties are never forwarded; personal ones are dropped unseen.
USER_PROPERTIES = {"email": {"value": EMAIL}, "full_name": {"value": FULL_NAME},
                   "tier": {"value": EMAIL}}  # fmt: skip


def test_nothing_identifying_reaches_kafka_or_logs(collector: RunningCollector) -> None:
    sent = 0
    for ip in IPS:
        for agent in USER_AGENTS:
            headers = {"User-Agent": agent, "X-Forwarded-For": ip, "CF-IPCountry": "de"}
            page = (
                f"https://shop.example/account/{EMAIL}/orders?email={EMAIL}&gclid=gclid-secret-zq9"
                "&utm_source=newsletter&utm_medium=email"
            )
            body = {
                "name": "page_view",
                "url": page,
                "referrer": f"https://mail.example/?to={EMAIL}",
            }
            assert (
                httpx.post(f"{collector.url}/api/event", json=body, headers=headers).status_code
                == 202
            )
            ga4 = {
                "client_id": CLIENT_ID,
                "user_id": USER_ID,
                "user_properties": USER_PROPERTIES,
                "events": [{"name": "page_view", "params": {"page_location": page}}],
            }
            response = httpx.post(
                f"{collector.url}/mp/collect?measurement_id=shop.example", json=ga4, headers=headers
            )
            assert response.status_code == 204
            sent += 2
            # The validation server reads the same request and produces nothing.
            validated = httpx.post(
                f"{collector.url}/debug/mp/collect?measurement_id=shop.example",
                json=ga4,
                headers=headers,
            )
            assert validated.json() == {"validationMessages": []}
            # Plausible's Events API body, as its trackers send it (text/plain).
            plausible = {"n": "pageview", "u": page, "d": "shop.example",
                         "r": f"https://mail.example/?to={EMAIL}"}  # fmt: skip
            answer = httpx.post(
                f"{collector.url}/api/event",
                content=json.dumps(plausible),
                headers={**headers, "Content-Type": "text/plain"},
            )
            assert answer.status_code == 202
            # gtag.js's web protocol: cid and uid in the query string.
            gtag = {"v": "2", "tid": "shop.example", "cid": CLIENT_ID, "uid": USER_ID,
                    "en": "page_view", "dl": page, "dr": f"https://mail.example/?to={EMAIL}"}  # fmt: skip
            assert (
                httpx.post(f"{collector.url}/g/collect", params=gtag, headers=headers).status_code
                == 204
            )
            sent += 2
    # A rejected request must not leak either (its reason goes to the client, not the log).
    bad = {"name": "x", "url": f"https://shop.example/?e={EMAIL}", "currency": EMAIL}
    assert (
        httpx.post(
            f"{collector.url}/api/event", json=bad, headers={"User-Agent": USER_AGENTS[0]}
        ).status_code
        == 400
    )

    messages = read_topic(collector.bootstrap, collector.topic, sent)
    assert len(messages) == sent
    collector.stop()  # flush its logs
    log_text = collector.log_text()
    assert "DEBUG" in log_text  # the scan covers the most verbose log level
    haystacks = {"kafka": b"\n".join(messages).decode(), "collector log": log_text}
    for where, text in haystacks.items():
        for secret in SECRETS:
            assert secret.lower() not in text.lower(), f"{secret!r} leaked into {where}"

    events = events_of(messages)
    browser_events = [e for e in events if "device_category" in e and e.get("browser")]
    assert {e["country"] for e in browser_events} == {"DE"}
    assert all(e.get("click_id_type") == "gclid" for e in events)
    assert all("[email]" in str(e["page_url"]) for e in events)
    # The four browser/IP combinations are four cookie-free visitors (PlainSignal's and
    # Plausible's bodies alike); GA4's client id is one stable one (MP and gtag alike).
    assert len({e["visitor_id"] for e in events}) == len(IPS) * len(USER_AGENTS) + 1
