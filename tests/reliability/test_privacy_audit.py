"""Privacy audit after a full run (issue 14, part 4).

One end-to-end run on the test broker, in a data dir of its own: a real `sessionflow
collect` behind a trusted proxy header takes known identifying values through every
protocol (PlainSignal and Plausible bodies on /api/event, GA4 MP /mp/collect and its
validation server /debug/mp/collect, gtag.js /g/collect GET and POST), `sessionflow
produce --file` and `sessionflow import` take canonical events with e-mail addresses in
their URLs, the SDK one more (and refuses an e-mail as a user id, and an IP field), a
back end writing its own bytes past the SDK sends a bad event for the dead-letter path;
then `consume
--until-caught-up`, `run daily`, and `report`, every command with --verbose and its output
kept. The scan then reads every topic the run used (and Kafka's internal ones), the
broker's log segments (raw and decompressed), every file of the data dir (raw, Parquet
rows, every DuckDB table), the Prefect server's state and every log, and finds none of
the IPs, user agents, client ids, user ids or e-mail addresses sent.

What the product promises (README, Privacy), and so what is asserted:
- no raw IP, user agent, client id, user id or e-mail in Kafka, Parquet, DuckDB or logs;
- URL query strings keep only utm_* (an ad click id only as its type); e-mail addresses
  anywhere in a URL or a campaign field are redacted to "[email]";
- a salt older than yesterday's is destroyed, and yesterday's too once the session
  timeout after midnight has passed. Canonical events (`produce`, `import`, the SDK)
  carry ids already pseudonymous by contract; validation refuses one that is an e-mail or
  IP address (not_pseudonymous), and their URLs are scrubbed like the collector's.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pyarrow.parquet as pq
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from pipeline.config import load_settings
from pipeline.events.reasons import Rejected
from pipeline.kafka.producer import EventProducer
from tests.conftest import free_port, run_cli
from tests.integration.conftest import collector_env, start_collector
from tests.reliability.privacy_scan import Identifiers, Scan

SITE = "shop.example"
# The raw message a back end writes past the SDK (see _produce_and_import): values sent
# only there.
RAW_KIND = "raw_message"
RAW_EMAIL = "judy.{tok}@example.com"
RAW_IP = "192.0.2.99"
RAW_CLEAN_EVENTS = 120  # beside the raw messages: a batch the consumer's bulk path takes
TIMEOUT_MINUTES = 30  # the session timeout: how long yesterday's salt may live after midnight


@dataclass
class Run:
    """The run's places and what it sent."""

    token: str  # in every marked identifier, and in nothing else the run sends
    raw_token: str  # in the raw message's values only
    data_dir: Path
    logs: Path
    env: dict[str, str]
    topic_prefix: str
    sent: Identifiers
    accepted: dict[str, int]  # events answered 2xx (or produced, imported), by path
    last_cookie_free: tuple[datetime, datetime] | None = None  # around the last salted hit
    # (what was sent, the answer or outcome it got, the one it must get): asserted after
    # the scan, so that a run on code without a rule still reports what it leaked.
    answers: list[tuple[str, object, object]] = field(default_factory=list)
    rejected_rows: int = 0  # records the consumer and `import` must send to lake/rejected
    dead_letters: int = 0  # of those, the consumer's (on the dead-letter topic too)


def _ua(base: str, marker: str) -> str:
    return f"{base} {marker}/1.0"


_BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
]
# Client addresses from the documentation ranges (RFC 5737, RFC 3849), one per range.
_IPS = ["192.0.2.45", "198.51.100.137", "203.0.113.201", "2001:db8:4a7:1::c0de"]


def _ga_client_id() -> str:
    # GA4's shape: random number, a dot, first-visit epoch seconds. Both random here (and
    # the second far from today's epoch), so that 21 such digits match nothing by chance.
    return f"{secrets.randbelow(9 * 10**9) + 10**9}.{secrets.randbelow(10**9) + 2 * 10**9}"


def _ga_session_id() -> str:
    # GA4's ga_session_id is the session's start in epoch seconds; random here, and far
    # from today's, so that its 10 digits match nothing else by chance.
    return str(secrets.randbelow(10**9) + 3 * 10**9)


def _now_micros() -> int:
    return time.time_ns() // 1000


def _log(run: Run, name: str, result: Any) -> None:
    # Every command's output is a log the scan reads.
    (run.logs / f"{name}.log").write_text(f"{result.stdout}\n--- stderr\n{result.stderr}")


# -- the run -------------------------------------------------------------------------------


def _send_collector_traffic(run: Run, url: str) -> None:
    tok, sent, accepted = run.token, run.sent, run.accepted
    markers = [f"AuditUa{tok}{letter}" for letter in "ABCD"]
    agents = [_ua(base, marker) for base, marker in zip(_BROWSERS, markers, strict=True)]
    sent.add("ip", *_IPS)
    sent.add("user_agent", *agents, *markers)
    sent.add("marker", tok)  # every marked identifier holds it: catches partial leaks too
    email_query = f"alice.{tok}@example.com"  # in query strings, as is and encoded
    email_path = f"bob.{tok}@example.org"  # in URL paths
    email_ref = f"carol.{tok}@example.net"  # in referrers
    email_utm = f"dave.{tok}@example.com"  # typed into utm_campaign
    email_param = f"erin.{tok}@example.com"  # in event params, props, user properties
    email_user = f"frank.{tok}@example.com"  # as a user id
    sent.add("email", email_query, email_path, email_ref, email_utm, email_param, email_user)
    page = (
        f"https://{SITE}/account/{email_path}/orders?email={quote(email_query)}"
        f"&contact={email_query}&utm_source=newsletter&utm_medium=email"
        f"&utm_campaign=spring-{quote(email_utm)}&gclid=Cj0KCQ{tok}gclid#{email_query}"
    )
    referrer = f"https://mail.example/inbox?to={email_ref}&from={quote(quote(email_ref))}"
    sent.add("marker", f"Cj0KCQ{tok}gclid")  # a click id's value: only its type may stay

    with httpx.Client(base_url=url, timeout=30.0) as client:
        for index, (ip, agent) in enumerate(zip(_IPS, agents, strict=True)):
            # A proxy chain: the client, then an inner proxy the collector trusts.
            forwarded = ip if index % 2 == 0 else f"{ip}, 10.20.30.40"
            headers = {"User-Agent": agent, "X-Forwarded-For": forwarded, "CF-IPCountry": "DE"}
            # A browser's first-party cookies ride along; the collector reads none.
            cookie_client = _ga_client_id()
            sent.add("client_id", cookie_client, f"GA1.1.{cookie_client}")
            cookie = {"Cookie": f"_ga=GA1.1.{cookie_client}; email={quote(email_param)}"}

            # 1. PlainSignal body (our tracker), JSON.
            body: dict[str, Any] = {"name": "page_view", "url": page, "referrer": referrer}
            answer = client.post("/api/event", json=body, headers={**headers, **cookie})
            assert answer.status_code == 202 and answer.json() == {"accepted": 1}, answer.text
            body = {"name": "sign_up", "url": page, "value": 5, "currency": "USD"}
            answer = client.post("/api/event", json=body, headers=headers)
            assert answer.status_code == 202 and answer.json() == {"accepted": 1}, answer.text
            accepted["plainsignal"] += 2

            # 2. Plausible's Events API body, as its trackers send it (text/plain).
            plausible = {"n": "pageview", "u": page, "d": SITE, "r": referrer,
                         "p": {"email": email_param, "plan": "gold"}}  # fmt: skip
            answer = client.post(
                "/api/event", content=json.dumps(plausible),
                headers={**headers, "Content-Type": "text/plain"},
            )  # fmt: skip
            assert answer.status_code == 202 and "X-Plausible-Dropped" not in answer.headers
            accepted["plausible"] += 1

            # 3. GA4 Measurement Protocol: raw client id and user id (an e-mail for one
            # visitor), personal user properties and params, URLs with e-mails.
            client_id, user_id = _ga_client_id(), f"user-{tok}-{index}"
            session_id = _ga_session_id()
            sent.add("client_id", client_id)
            sent.add("session_id", session_id)
            sent.add("user_id", user_id)
            stamp = _now_micros() - 60_000_000
            ga4 = {
                "client_id": client_id,
                "user_id": email_user if index == 0 else user_id,
                "timestamp_micros": stamp,
                "user_properties": {"email": {"value": email_param},
                                    "plan": {"value": "gold"},
                                    "customer_ref": {"value": email_param}},
                "device": {"category": "desktop", "browser": "Chrome"},
                "events": [
                    {"name": "page_view", "params": {
                        "page_location": page, "page_referrer": referrer,
                        "session_id": session_id, "engagement_time_msec": 1200,
                        "customer_email": email_param, "campaign": f"promo-{email_utm}"}},
                    {"name": "purchase", "params": {
                        "page_location": page, "session_id": session_id,
                        "transaction_id": f"T-{uuid.uuid4().hex[:8]}", "value": 42.5,
                        "currency": "USD", "customer_email": email_param}},
                ],
            }  # fmt: skip
            mp_query = f"/mp/collect?measurement_id={SITE}"
            answer = client.post(mp_query, json=ga4, headers=headers)
            assert answer.status_code == 204, answer.text
            accepted["ga4_mp"] += 2

            # 4. The validation server: answers, produces nothing; its client id is sent
            # nowhere else, so it must be found nowhere at all.
            debug_client = _ga_client_id()
            sent.add("client_id", debug_client)
            answer = client.post(
                f"/debug/mp/collect?measurement_id={SITE}",
                json={**ga4, "client_id": debug_client}, headers=headers,
            )  # fmt: skip
            assert answer.json() == {"validationMessages": []}, answer.text

            # 5. gtag.js: cid/uid in the query, the _ga cookie beside them, a GET beacon
            # and a POST of two event lines.
            cid, uid, sid = _ga_client_id(), f"uid-{tok}-{index}", _ga_session_id()
            sent.add("client_id", cid, f"GA1.1.{cid}")
            sent.add("session_id", sid)
            sent.add("user_id", uid)
            shared = {"v": "2", "tid": SITE, "cid": cid, "uid": uid, "sid": sid,
                      "dl": page, "dr": referrer, "ul": "de-de"}  # fmt: skip
            gtag_headers = {**headers, "Cookie": f"_ga=GA1.1.{cid}; _ga_X=GS1.1.{cid}"}
            event = {**shared, "en": "page_view", "ep.customer_email": email_param, "_et": "900"}
            answer = client.get("/g/collect", params=event, headers=gtag_headers)
            assert answer.status_code == 204, answer.text
            lines = "\n".join(
                urlencode({"en": name, "ep.customer_email": email_param, "_et": "300"})
                for name in ("scroll", "click")
            )
            answer = client.post(
                f"/g/collect?{urlencode(shared)}", content=lines,
                headers={**gtag_headers, "Content-Type": "text/plain"},
            )  # fmt: skip
            assert answer.status_code == 204, answer.text
            accepted["gtag"] += 3

        _send_personal_data(run, client, {"User-Agent": agents[2], "X-Forwarded-For": _IPS[2]})

        # Rejected requests: their reasons go back to the client, never to a log.
        headers = {"User-Agent": agents[0], "X-Forwarded-For": _IPS[0]}
        bad_plain = {"name": "page_view", "url": page, "currency": email_param}
        assert client.post("/api/event", json=bad_plain, headers=headers).status_code == 400
        bad_client = _ga_client_id()
        bad_mp = {"client_id": bad_client, "user_id": email_user,
                  "events": [{"name": f"x{tok}bad-name", "params": {"page_location": page}}]}  # fmt: skip
        sent.add("client_id", bad_client)
        sent.add("marker", f"x{tok}bad-name")
        answer = client.post(f"/mp/collect?measurement_id={SITE}", json=bad_mp, headers=headers)
        assert answer.status_code == 400, answer.text
        answer = client.get(
            "/g/collect", params={"v": "1", "tid": SITE, "cid": cid, "uid": email_user, "en": "x"},
            headers=headers,
        )  # fmt: skip
        assert answer.status_code == 400, answer.text

        # The last salted (cookie-free) hit: the salt check below is timed from it.
        before = datetime.now(UTC)
        body = {"name": "page_view", "url": f"https://{SITE}/last"}
        answer = client.post(
            "/api/event", json=body, headers={"User-Agent": agents[1], "X-Forwarded-For": _IPS[1]}
        )
        assert answer.status_code == 202, answer.text
        run.last_cookie_free = (before, datetime.now(UTC))
        accepted["plainsignal"] += 1

        # Wait (bounded) until Kafka acknowledged everything the collector took.
        total = sum(accepted.values())
        deadline = time.monotonic() + 60
        while (health := client.get("/health").json())["delivered"] < total:
            assert time.monotonic() < deadline, health
            time.sleep(0.1)  # polling a condition, with a deadline
        assert health["outcomes"].get("accepted") == total, health


# -- personal data in every field ------------------------------------------------------------


@dataclass(frozen=True)
class Personal:
    """One of each kind of personal data, as a careless shop or a hostile client sends it
    in any field: each is refused in an id or event name, redacted in free text."""

    email: str
    ipv4: str
    ipv6: str
    phone: str  # spaced, as typed
    phone_compact: str
    client_id: str  # GA's shape
    ga_cookie: str  # the _ga cookie's spelling of another one
    user_agent: str  # short enough for a 64-character os field

    @classmethod
    def make(cls, run: Run, kind: str, label: str, token: str, ipv4: str, ipv6: str) -> Personal:
        digits = secrets.randbelow(800) + 100
        made = cls(
            email=f"{label}.{token}@example.com",
            ipv4=ipv4,
            ipv6=ipv6,
            phone=f"+44 20 7946 0{digits}",  # Ofcom's range for drama: no one's number
            phone_compact=f"+4420794610{digits}",
            client_id=_ga_client_id(),
            ga_cookie=f"GA1.1.{_ga_client_id()}",
            user_agent=f"Mozilla/5.0 (X11; Linux) {label}Ua{token}/1",
        )
        if kind == "personal":
            run.sent.add("email", made.email)
            run.sent.add("ip", made.ipv4, made.ipv6)
            run.sent.add("phone", made.phone, made.phone_compact)
            run.sent.add("client_id", made.client_id, made.ga_cookie)
            run.sent.add("user_agent", made.user_agent, f"{label}Ua{token}")
        else:  # values of a raw message, expected on the events topic only
            run.sent.add(kind, made.email, made.ipv4, made.ipv6, made.phone, made.phone_compact)
            run.sent.add(kind, made.client_id, made.ga_cookie, made.user_agent)
        return made

    def page(self) -> str:
        """A page URL with each kind in its path and in every utm_* value."""
        return (
            f"https://{SITE}/p/{self.ipv4}/{quote(self.phone)}/{self.client_id}/{self.ipv6}/"
            f"{quote(self.email)}/x?utm_source={quote(self.user_agent)}"
            f"&utm_medium={quote(self.phone_compact)}&utm_campaign=c-{self.ipv4}"
            f"&utm_term={self.ga_cookie}&utm_content={quote(self.email)}"
        )

    def referrer(self) -> str:
        """A referrer with a user agent spanning its path's segments."""
        return f"https://ref.example/from/{self.ipv6}/{quote(self.user_agent, safe='/();')}"

    def free_text(self) -> dict[str, str]:
        """Every canonical free-text field holding some (all accepted, redacted)."""
        return {
            "page_url": self.page(), "page_referrer": self.referrer(),
            "utm_source": f"s {self.email}", "utm_medium": self.phone,
            "utm_campaign": f"c {self.ipv4} {self.ipv6}", "utm_term": self.client_id,
            "utm_content": self.user_agent, "browser": self.email,
            "os": self.user_agent, "click_id_type": self.ga_cookie,
        }  # fmt: skip

    def identifiers(self) -> dict[str, dict[str, str]]:
        """One canonical event's fields per id and name holding some (each refused)."""
        return {
            "session_id": {"session_id": self.email},
            "event_id": {"event_id": f"e-{self.ipv4}"},
            "transaction_id": {"transaction_id": self.phone, "event_name": "purchase"},
            "event_name": {"event_name": f"signup {self.email}"[:64]},
            "visitor_id": {"visitor_id": self.phone_compact},
            "user_id": {"user_id": self.client_id},
            "user_id (cookie)": {"user_id": self.ga_cookie},
            "session_id (ip)": {"session_id": self.ipv6},
        }


def _answered(
    run: Run, label: str, answer: httpx.Response, want: tuple[int, int, list[str]], sent: int = 1
) -> int:
    """Record (status, events accepted, reasons) against `want`; the events accepted (of
    `sent`)."""
    status = answer.status_code
    body = (
        answer.json()
        if answer.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    if status == 204:
        accepted = sent  # all of them
    elif "accepted" in body:
        accepted = body["accepted"]
    else:
        accepted = 1 if status == 202 and "X-Plausible-Dropped" not in answer.headers else 0
    reasons = [p["reason"] for p in body.get("rejected", [])] or (
        [body["reason"]] if "reason" in body else []
    )
    run.answers.append((label, (status, accepted, reasons), want))
    return accepted


def _send_personal_data(run: Run, client: httpx.Client, headers: dict[str, str]) -> None:
    """Every collector route, every field a client writes, holding personal data."""
    pd = Personal.make(run, "personal", "pat", run.token, "203.0.113.77", "2001:db8:77::5")
    refused = "not_pseudonymous"
    accepted = run.accepted

    # PlainSignal body: the page and referrer carry it (redacted); the name (refused).
    body = {"name": "page_view", "url": pd.page(), "referrer": pd.referrer()}
    answer = client.post("/api/event", json=body, headers=headers)
    accepted["plainsignal"] += _answered(run, "plainsignal page", answer, (202, 1, []))
    # An IP address as the referrer's host (redacted to ip.invalid).
    body = {"name": "page_view", "url": pd.page(), "referrer": f"http://{pd.ipv4}:8080/from"}
    answer = client.post("/api/event", json=body, headers=headers)
    accepted["plainsignal"] += _answered(run, "plainsignal ip referrer", answer, (202, 1, []))
    # Names hiding it behind an invisible, an encoded invisible or a fullwidth character.
    hidden = (
        pd.email.replace("@", "@\u034f"),
        quote(pd.email.replace("@", "@\u200b")),
        pd.email.replace("@", "\uff20"),
        pd.ipv4.replace(".", "\u180e.", 1),
        pd.ipv4.replace(".", "\uff0e"),
    )
    run.sent.add("hidden", *hidden)
    for name in (f"signup {pd.email}", pd.phone, pd.client_id, *hidden):
        answer = client.post("/api/event", json={"name": name, "url": pd.page()}, headers=headers)
        accepted["plainsignal"] += _answered(
            run, f"plainsignal {name!r}", answer, (400, 0, [refused])
        )

    # Plausible's body: its URL and referrer (redacted), its name and transaction id prop.
    plausible: dict[str, Any] = {"n": "pageview", "u": pd.page(), "d": SITE, "r": pd.referrer()}
    answer = client.post("/api/event", json=plausible, headers=headers)
    accepted["plausible"] += _answered(run, "plausible page", answer, (202, 1, []))
    bad_bodies = {
        "plausible name": {**plausible, "n": f"Signup {pd.email}"},
        "plausible transaction id": {
            **plausible,
            "n": "Purchase",
            "p": {"transaction_id": pd.ipv4},
        },
    }
    for label, bad in bad_bodies.items():
        answer = client.post("/api/event", json=bad, headers=headers)
        accepted["plausible"] += _answered(run, label, answer, (400, 0, [refused]))

    # GA4 MP: session ids are hashed (accepted), event and transaction ids refused, the
    # campaign params and the device's browser and OS redacted.
    ga4 = _mp_body(pd)
    answer = client.post(f"/mp/collect?measurement_id={SITE}", json=ga4, headers=headers)
    accepted["ga4_mp"] += _answered(run, "ga4 mp", answer, (400, 2, [refused] * 3), sent=5)

    # The validation server: values of its own, which must be found nowhere at all.
    debug = Personal.make(run, "personal", "dbg", run.token, "198.51.100.77", "2001:db8:78::5")
    answer = client.post(
        f"/debug/mp/collect?measurement_id={SITE}", json=_mp_body(debug), headers=headers
    )
    run.answers.append(("ga4 debug", answer.status_code, 200))

    # gtag.js: sid hashed, dl/dr redacted, ep.event_id and ep.transaction_id refused.
    shared = {"v": "2", "tid": SITE, "cid": pd.client_id, "uid": pd.email, "sid": pd.email,
              "dl": pd.page(), "dr": pd.referrer()}  # fmt: skip
    answer = client.get("/g/collect", params={**shared, "en": "page_view"}, headers=headers)
    accepted["gtag"] += _answered(run, "gtag page", answer, (204, 1, []))
    lines = "\n".join(
        urlencode(line)
        for line in (
            {"en": "purchase", "ep.transaction_id": pd.phone, "epn.value": "3", "cu": "USD"},
            {"en": "click", "ep.event_id": pd.ipv4},
            {"en": "scroll", "sid": pd.ipv6},
        )
    )
    answer = client.post(
        f"/g/collect?{urlencode(shared)}", content=lines,
        headers={**headers, "Content-Type": "text/plain"},
    )  # fmt: skip
    accepted["gtag"] += _answered(run, "gtag lines", answer, (400, 1, [refused] * 2), sent=3)


def _mp_body(pd: Personal) -> dict[str, Any]:
    campaign = {"source": pd.user_agent, "medium": pd.phone, "campaign": pd.ipv4,
                "term": pd.ga_cookie, "content": pd.email}  # fmt: skip
    events = [
        {"name": "page_view", "params": {"page_location": pd.page(), "page_referrer": pd.referrer(),
                                         "session_id": pd.email, **campaign}},
        {"name": "page_view", "params": {"page_location": pd.page(), "session_id": pd.ipv6}},
        {"name": "purchase", "params": {"transaction_id": pd.email, "value": 1, "currency": "USD"}},
        {"name": "page_view", "params": {"event_id": pd.phone}},
        {"name": "page_view", "params": {"event_id": f"e-{pd.client_id}"}},
    ]  # fmt: skip
    return {"client_id": pd.client_id, "user_id": pd.ga_cookie, "events": events,
            "device": {"category": "desktop", "browser": pd.email,
                       "operating_system": pd.user_agent}}  # fmt: skip


def _canonical(index: int, email: str, **fields: Any) -> dict[str, Any]:
    ts = datetime.now(UTC) - timedelta(hours=2, minutes=index)
    return {
        "event_id": f"file-{uuid.uuid4().hex}",
        "event_name": "page_view",
        "event_ts": ts.isoformat(),
        "site_id": SITE,
        # Already pseudonymous by contract (a keyed hash): not an identifier we send.
        "visitor_id": hashlib.sha256(f"visitor-{index}".encode()).hexdigest()[:32],
        "page_url": f"https://{SITE}/u/{email}/cart?email={quote(email)}&utm_source=crm&utm_campaign=x-{email}",
        "page_referrer": f"https://mail.example/?to={email}",
        **fields,
    }


def _produce_and_import(run: Run, work: Path) -> None:
    # `produce --file`: canonical events validated into Kafka.
    tok = run.token
    emails = [f"grace.{tok}@example.com", f"heidi.{tok}@example.com", f"ivan.{tok}@example.com"]
    run.sent.add("email", *emails)
    # Personal data in every canonical field, the same for the three canonical routes: a
    # line or event per id and name (each refused), one with every free-text field.
    pd = Personal.make(run, "personal", "quin", tok, "203.0.113.78", "2001:db8:79::5")
    refused = [_canonical(40 + i, emails[0], **f) for i, f in enumerate(pd.identifiers().values())]
    redacted = _canonical(49, emails[0], **pd.free_text())
    produced = work / "produce.jsonl"
    rows = [_canonical(i, emails[0]) for i in range(3)]
    # A rejected line, whose unknown field's name is an address: the reject line names it.
    bad = _canonical(9, emails[0], currency=emails[1], **{f"a.{pd.email}": 1})
    lines = [*rows, bad, *refused, redacted]
    produced.write_text("\n".join(json.dumps(row) for row in lines) + "\n")
    result = run_cli(run.env, "--verbose", "produce", "--file", str(produced))
    _log(run, "produce", result)
    assert result.returncode == 4, result.stdout + result.stderr  # lines rejected
    found = re.search(r"produced (\d+) events; rejected (\d+)", result.stdout)
    assert found, result.stdout
    run.accepted["produce"] += int(found[1])
    run.answers.append(("produce --file", (int(found[1]), int(found[2])), (4, 1 + len(refused))))
    run.answers.append(
        ("produce --file reasons", _listed_reasons(result.stdout), ["not_pseudonymous"])
    )

    # The SDK, as a back end uses it: it validates and scrubs as the collector does, so an
    # e-mail in a URL is redacted before Kafka, and an e-mail as the user id, or a field
    # holding an IP, is refused with its reason; so is personal data in any id or name.
    kafka = load_settings(environ=run.env).kafka
    sdk_email = f"karl.{tok}@example.com"
    run.sent.add("email", sdk_email)
    with EventProducer(kafka) as producer:
        producer.send(_canonical(11, sdk_email))
        producer.send(_canonical(14, sdk_email, **pd.free_text()))
        run.accepted["sdk"] += 2
        refusals = {
            "not_pseudonymous": _canonical(12, sdk_email, user_id=sdk_email),
            "unknown_field": _canonical(13, sdk_email, client_ip=_IPS[0]),
        }
        for reason, event in refusals.items():
            with pytest.raises(Rejected) as caught:
                producer.send(event)
            assert caught.value.reason == reason
        for field_name, event in zip(pd.identifiers(), refused, strict=True):
            try:
                producer.send(event)
            except Rejected as rejected:
                run.answers.append((f"sdk {field_name}", rejected.reason, "not_pseudonymous"))
            else:
                run.accepted["sdk"] += 1
                run.answers.append((f"sdk {field_name}", "accepted", "not_pseudonymous"))

    # A back end writing its own bytes past the SDK: one event the consumer rejects (an
    # unknown field), for the dead-letter topic and lake/rejected, whose payloads keep no
    # e-mail or IP; then one per id and name holding personal data (rejected too), one
    # with it in every free-text field (accepted, redacted), and enough clean events
    # beside them that the consumer's bulk path decodes the batch. The messages hold
    # values of their own, which the scan expects on the events topic and nowhere else.
    dead = _canonical(10, RAW_EMAIL.format(tok=run.raw_token), client_ip=RAW_IP)
    raw_pd = Personal.make(run, RAW_KIND, "rory", run.raw_token, "198.51.100.98", "2001:db8:99::9")
    raw_email = RAW_EMAIL.format(tok=run.raw_token)
    raw_refused = [
        _canonical(60 + i, raw_email, **f) for i, f in enumerate(raw_pd.identifiers().values())
    ]
    raw_redacted = _canonical(69, raw_email, **raw_pd.free_text())
    clean = [_canonical(70 + i % 30, f"x{i}@example.com") for i in range(RAW_CLEAN_EVENTS)]
    for event in clean:
        event["page_url"] = f"https://{SITE}/clean/{event['event_id']}"
        del event["page_referrer"]
    raw = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=50)
    try:
        for event in [dead, *raw_refused, raw_redacted, *clean]:
            raw.send(kafka.events_topic, key=f"{SITE}/x".encode(), value=json.dumps(event).encode())
        raw.flush(timeout=30)
    finally:
        raw.close(timeout=5)
    run.sent.add(RAW_KIND, raw_email, RAW_IP, run.raw_token)
    run.accepted["raw"] += 1 + len(clean)
    run.rejected_rows += 1 + len(raw_refused)
    run.dead_letters += 1 + len(raw_refused)

    # `import`: canonical events straight into the lake, bad lines among them: a phone
    # number as the visitor id, a raw GA client id as the user id, and the rest.
    imported = work / "import.jsonl"
    rows = [_canonical(20 + i, emails[0]) for i in range(3)]
    bad = _canonical(29, emails[0], currency=emails[2], client_ip=_IPS[3], **{f"a.{pd.email}": 1})
    lines = [*rows, bad, *refused, redacted]
    imported.write_text("\n".join(json.dumps(row) for row in lines) + "\n")
    result = run_cli(run.env, "--verbose", "import", str(imported))
    _log(run, "import", result)
    assert result.returncode == 4, result.stdout + result.stderr
    found = re.search(r"accepted (\d+), rejected (\d+)", result.stdout)
    assert found, result.stdout
    run.accepted["import"] += int(found[1])
    run.rejected_rows += int(found[2])
    run.answers.append(("import", (int(found[1]), int(found[2])), (4, 1 + len(refused))))
    run.answers.append(("import reasons", _listed_reasons(result.stdout), ["not_pseudonymous"]))


def _listed_reasons(output: str) -> list[str]:
    """The reasons a command listed for the lines after the first four (the ids)."""
    listed = re.findall(r"^line (\d+): (\w+):", output, re.MULTILINE)
    return sorted({reason for line, reason in listed if int(line) > 4})


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _broker_dirs(base: Path, bootstrap: str) -> list[Path]:
    """The session broker's KRaft log dirs (tests/conftest.py starts it under the pytest
    base temp dir); none when KAFKA_BOOTSTRAP_SERVERS names an outside broker."""
    port = bootstrap.rsplit(":", 1)[-1]
    dirs = set()  # resolved: pytest links kafkacurrent to kafka0
    for properties in base.glob("kafka*/server.properties"):
        if f"PLAINTEXT://127.0.0.1:{port}," in properties.read_text():
            dirs.add(properties.parent.resolve())
    return sorted(dirs)


@pytest.fixture
def audit_run(kafka_bootstrap: str, tmp_path: Path) -> Run:
    """The run's settings: topics, consumer group and data dir of its own, a collector
    trusting the proxy headers, Prefect's local files in the test's directory."""
    prefix = f"audit.{uuid.uuid4().hex[:10]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = collector_env(
        kafka_bootstrap, tmp_path / "data", free_port(), prefix,
        SESSIONFLOW_COLLECTOR__TRUSTED_PROXIES='["127.0.0.1", "10.0.0.0/8"]',
        SESSIONFLOW_PRIVACY__COUNTRY_HEADER="CF-IPCountry",
        SESSIONFLOW_CONSUMER__GROUP_ID=f"{prefix}.lake",
        PREFECT_HOME=str(tmp_path / "prefect-home"),
    )  # fmt: skip
    paths = ("plainsignal", "plausible", "ga4_mp", "gtag", "produce", "sdk", "raw", "import")
    return Run(
        token=secrets.token_hex(5),
        raw_token=secrets.token_hex(5),
        data_dir=tmp_path / "data",
        logs=logs,
        env=env,
        topic_prefix=prefix,
        sent=Identifiers(),
        accepted=dict.fromkeys(paths, 0),
    )


def test_no_identifier_survives_a_full_run(
    audit_run: Run,
    kafka_bootstrap: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    shared_prefect_server: Any,
) -> None:
    started = time.monotonic()
    laps: list[str] = []

    def lap(name: str) -> None:
        laps.append(f"{name} {time.monotonic() - started:.0f}")

    run = audit_run
    settings = load_settings(environ=run.env)
    topics_before = _topics(kafka_bootstrap)

    # Salts from before the run: three and two days old, past any use. Seeded as the
    # product writes them (salt-YYYY-MM-DD, 32 random bytes).
    salt_dir = settings.salt_dir
    salt_dir.mkdir(parents=True, mode=0o700)
    today = datetime.now(UTC).date()
    seeded = [salt_dir / f"salt-{today - timedelta(days=back)}" for back in (3, 2)]
    for path in seeded:
        path.write_bytes(secrets.token_bytes(32))

    collector = start_collector(run.env, run.logs / "collector.log")
    try:
        # Expired salts go at start-up, before any request asks for a salt: an idle
        # collector keeps none past its time.
        deadline = time.monotonic() + 30
        while any(path.exists() for path in seeded):
            assert time.monotonic() < deadline, sorted(p.name for p in salt_dir.iterdir())
            time.sleep(0.05)  # polling a condition, with a deadline
        _send_collector_traffic(run, collector.url)
    finally:
        collector.stop()  # SIGTERM: flushes its buffer and its log
    collector_log = (run.logs / "collector.log").read_text()
    assert "DEBUG" in collector_log  # the scan covers the most verbose level
    lap("collector")

    _produce_and_import(run, tmp_path)
    lap("produce+import")

    result = run_cli(run.env, "--verbose", "consume", "--until-caught-up", timeout=300)
    _log(run, "consume", result)
    assert result.returncode == 0, result.stdout + result.stderr
    lap("consume")
    day = datetime.now(UTC).date()  # after the events: the look-back covers yesterday's
    result = run_cli(run.env, "--verbose", "run", "daily", "--date", str(day), timeout=300)
    _log(run, "run-daily", result)
    assert result.returncode == 0, result.stdout + result.stderr
    lap("run daily")
    result = run_cli(run.env, "--verbose", "report", timeout=300)
    _log(run, "report", result)
    assert result.returncode == 0, result.stdout + result.stderr
    lap("report")

    # -- the run reached everywhere it should (a scan of empty places proves nothing) ------
    lake = sorted((run.data_dir / "lake" / "events").rglob("*.parquet"))
    lake_rows = pq.ParquetDataset(lake).read() if lake else None
    assert lake_rows is not None
    run.answers.append(("lake rows", lake_rows.num_rows, sum(run.accepted.values())))
    pages = [u for u in lake_rows.column("page_url").to_pylist() if u]
    # The promise for URLs: only utm_* stays in a query, e-mails become "[email]".
    assert pages and all(
        "[email]" in page for page in pages if "/last" not in page and "/clean/" not in page
    ), pages[:3]
    assert not any(name in page for page in pages for name in ("email=", "contact=", "gclid="))
    assert set(lake_rows.column("click_id_type").to_pylist()) >= {"gclid"}
    rejected = sorted((run.data_dir / "lake" / "rejected").rglob("*.parquet"))
    rejected_rows = sum(pq.read_metadata(p).num_rows for p in rejected)
    run.answers.append(("lake/rejected rows", rejected_rows, run.rejected_rows))
    assert sorted(run.data_dir.glob("marts/**/*.parquet")), "no marts were written"

    # -- salts -------------------------------------------------------------------------------
    assert run.last_cookie_free is not None
    first, last = run.last_cookie_free
    midnight = datetime.combine(first.date(), datetime.min.time(), UTC)
    allowed: set[date] = {first.date(), last.date()}
    if first - midnight < timedelta(minutes=TIMEOUT_MINUTES) or first.date() != last.date():
        allowed.add(first.date() - timedelta(days=1))  # sessions may still cross midnight
    salts = {p.name: p for p in salt_dir.glob("salt-*")}
    kept = {date.fromisoformat(name.removeprefix("salt-")) for name in salts}
    assert not any(path.exists() for path in seeded), sorted(salts)
    assert kept <= allowed, (sorted(kept), sorted(allowed))
    assert kept & {first.date(), last.date()}, "the salt of the last hit's day is missing"

    # -- the scan ---------------------------------------------------------------------------
    # Controls: the flow's log line (names the tables it built) and the scrubbed URLs'
    # placeholder must be seen where they were written, or the scan is looking elsewhere.
    placeholders = ["[ip]", "[phone]", "[client-id]", "[user-agent]"]
    controls = ["daily_site_summary", "[email]", *placeholders]
    scan = Scan(run.sent.needles(), anchors=[run.token, run.raw_token], controls=controls)
    topics_after = _topics(kafka_bootstrap)
    run_topics = {t for t in topics_after if t.startswith(run.topic_prefix)}
    new_app_topics = {
        t for t in topics_after - topics_before if not t.startswith(("test.", "audit."))
    }
    internal = {t for t in topics_after if t.startswith("__")}
    assert {settings.kafka.events_topic, settings.kafka.dlq_topic} <= run_topics
    scan.topics(kafka_bootstrap, run_topics | new_app_topics | internal)
    # Everything but `import` went through the events topic; the raw bad events are on the
    # dead-letter topic too.
    produced = sum(run.accepted.values()) - run.accepted["import"] + 1
    assert scan.messages[settings.kafka.events_topic] >= produced, scan.messages
    run.answers.append(("dlq messages", scan.messages[settings.kafka.dlq_topic], run.dead_letters))

    broker_dirs = _broker_dirs(tmp_path_factory.getbasetemp(), kafka_bootstrap)
    for broker in broker_dirs:
        for partition in sorted((broker / "kraft").iterdir()):
            topic = partition.name.rsplit("-", 1)[0]
            if partition.is_dir() and topic in run_topics | new_app_topics | internal:
                scan.broker_partition_dir(partition)
        scan.tree(broker / "logs", "broker-logs")
    # The lake, lake/rejected, the marts, the warehouse, the consumer state, the salts,
    # the spill directory and the report.
    scan.tree(run.data_dir, "data")
    scan.tree(run.logs, "logs")  # the collector's log and every command's output
    if (tmp_path / "prefect-home").exists():  # a temporary Prefect server keeps its DB here
        scan.tree(tmp_path / "prefect-home", "prefect-home")
    server = shared_prefect_server.server
    if server is not None:  # flow runs' logs live in the Prefect server's database
        scan.tree(server.state_dir, "prefect-server")
    assert scan.controls[b"daily_site_summary"] & {"prefect-server", "prefect-home"}, (
        f"the flow's logs were not where the scan looked: {scan.controls}"
    )
    scrubbed_in = {"kafka", "data"} | ({"broker"} if broker_dirs else set())
    assert scrubbed_in <= scan.controls[b"[email]"], scan.controls
    for placeholder in placeholders:  # every kind was redacted where it was written
        seen = scan.controls[placeholder.encode()] & scrubbed_in
        run.answers.append((f"{placeholder} seen in", sorted(seen), sorted(scrubbed_in)))

    # Every identifier the run sent, in every spelling: found nowhere.
    sent = run.sent.counts()
    places = scan.summary()
    lap("scan")
    # The raw message itself, on the events topic (as sent, and in the broker's segment
    # of its partition), is the back end's own write; anywhere else it is a leak.
    events = settings.kafka.events_topic
    own = (f"kafka:{events}/", f"broker:{events}-")
    expected = [h for h in scan.hits if h.kind == RAW_KIND and h.where.startswith(own)]
    assert expected, "the raw message was not found where it was sent: the scan is blind"
    hits = sorted({(h.kind, h.value, h.where) for h in scan.hits if h not in expected})
    print(
        f"\nprivacy audit: sent {sent}; accepted {sum(run.accepted.values())} events "
        f"({', '.join(f'{k} {v}' for k, v in run.accepted.items())}); scanned {places}; "
        f"broker dirs {len(broker_dirs)}; hits {len(hits)} (and {len(expected)} expected: the "
        f"raw message where it was sent); s since start: {', '.join(laps)}",
        file=sys.stderr,
    )
    by_place = Counter((kind, where.split(":", 1)[0]) for kind, _, where in hits)
    print(f"hits by kind and place: {dict(sorted(by_place.items()))}", file=sys.stderr)
    wrong = [f"{label}: got {got}, want {want}" for label, got, want in run.answers if got != want]
    print(f"personal data: {len(run.answers)} answers checked, {len(wrong)} wrong", file=sys.stderr)
    leaks = "\n".join(f"{kind} {value!r} in {where}" for kind, value, where in hits[:40])
    assert not hits and not wrong, f"{len(hits)} hits:\n{leaks}\n" + "\n".join(wrong)
