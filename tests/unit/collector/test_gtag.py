"""gtag.js's web protocol (`/g/collect`): the parser, then the "gtag" enrichment steps."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest

from pipeline.collector.enrichment import Dropped, Ingestor, RequestContext
from pipeline.collector.gtag import GTAG_MAX_EVENTS, parse_gtag
from pipeline.collector.hits import Hit
from pipeline.config import Ga4Stream, Settings, load_settings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import parse_event_ts

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
NOW = parse_event_ts("2026-11-20T12:00:00Z")
CLIENT_ID = "1197596843.1731000000"
USER_ID = "customer-4711"
LANDING = (
    "https://shop.example/?utm_source=newsletter&utm_medium=email&gclid=Gclid-Value-XyZ&q=1#top"
)
SHARED = {
    "v": "2",
    "tid": "G-SHOP1234",
    "gtm": "45je4b20v9",
    "_p": "1731000123456",
    "cid": CLIENT_ID,
    "ul": "en-us",
    "sr": "1920x1080",
    "sid": "1731000000",
    "sct": "3",
    "seg": "1",
    "dl": LANDING,
    "dr": "https://www.google.com/",
    "dt": "Shop | Home page",
}


def query(**params: str) -> str:
    return urlencode({**SHARED, **params})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    loaded = load_settings(
        environ={
            "SESSIONFLOW_DATA_DIR": str(tmp_path),
            "SESSIONFLOW_SITES": '["shop.example", "blog.example"]',
            "SESSIONFLOW_PRIVACY__COUNTRY_HEADER": "CF-IPCountry",
        }
    )
    streams = {"shop.example": Ga4Stream(measurement_id="G-SHOP1234")}
    return loaded.model_copy(update={"ga4": streams})


def request(user_agent: str = CHROME, **headers: str) -> RequestContext:
    merged = {"user-agent": user_agent, **{k.lower(): v for k, v in headers.items()}}
    return RequestContext("198.51.100.9", user_agent, merged, NOW, via_trusted_proxy=True)


def only_hit(outcomes: list[Hit | Rejected]) -> Hit:
    assert len(outcomes) == 1
    (hit,) = outcomes
    assert isinstance(hit, Hit), hit
    return hit


def rejection(outcome: Hit | Rejected) -> str:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


# -- the parser ------------------------------------------------------------------------------


def test_a_query_string_alone_is_one_event() -> None:
    hit = only_hit(parse_gtag(query(en="page_view", _et="1200", uid=USER_ID), b""))
    assert hit.dialect == "gtag"
    assert (hit.event_name, hit.site_id, hit.client_id, hit.user_id) == (
        "page_view", "G-SHOP1234", CLIENT_ID, USER_ID,
    )  # fmt: skip
    assert (hit.session_id, hit.engagement_time_ms) == ("1731000000", 1200)
    assert (hit.page_url, hit.page_referrer) == (LANDING, "https://www.google.com/")
    assert hit.event_ts is None  # gtag dates nothing: the collector's clock does
    assert hit.value is None and hit.currency is None and hit.transaction_id is None


def test_a_batched_body_gives_one_event_per_line_on_the_shared_params() -> None:
    body = (
        b"en=page_view&_et=10\r\n"
        b"en=scroll&epn.percent_scrolled=90&_et=4200\r\n"
        b"en=page_view&dl=https%3A%2F%2Fshop.example%2Fproducts%2F42&_et=800\n"
        b"\n"  # a trailing or blank line is no event
    )
    hits = parse_gtag(query(), body)
    assert all(isinstance(hit, Hit) for hit in hits)
    batch = [hit for hit in hits if isinstance(hit, Hit)]
    assert [(h.event_name, h.engagement_time_ms, h.position) for h in batch] == [
        ("page_view", 10, 0),
        ("scroll", 4200, 1),
        ("page_view", 800, 2),
    ]
    # Shared params reach every line; a line's own params win.
    assert {(h.client_id, h.session_id, h.site_id) for h in batch} == {
        (CLIENT_ID, "1731000000", "G-SHOP1234")
    }
    assert [h.page_url for h in batch] == [LANDING, LANDING, "https://shop.example/products/42"]
    assert batch[1].params == {"percent_scrolled": 90.0}


def test_event_params_ep_are_strings_and_epn_numbers() -> None:
    hit = only_hit(
        parse_gtag(
            query(
                en="purchase",
                cu="eur",
                **{
                    "epn.value": "25.5",
                    "ep.transaction_id": "T-1001",
                    "ep.coupon": "WINTER",
                    "epn.shipping": "4.90",
                    "epn.tax": "not-a-number",  # not stored: dropped, not an error
                    "pr1": "idSKU_1~nmT-shirt~pr25.5~qt1",  # items: not read
                },
            ),
            b"",
        )
    )
    assert (hit.value, hit.currency, hit.transaction_id) == (25.5, "EUR", "T-1001")
    assert hit.params == {
        "value": 25.5,
        "transaction_id": "T-1001",
        "coupon": "WINTER",
        "shipping": 4.9,
    }


def test_value_and_currency_fall_back_to_string_params() -> None:
    hit = only_hit(
        parse_gtag(query(en="purchase", **{"ep.value": "12", "ep.currency": "usd"}), b"")
    )
    assert (hit.value, hit.currency) == (12.0, "USD")
    bad = parse_gtag(query(en="purchase", **{"epn.value": "12,50"}), b"")
    assert rejection(bad[0]) == Reason.WRONG_TYPE


def test_user_engagement_is_an_engagement_signal_not_an_error() -> None:
    hit = only_hit(parse_gtag(query(en="user_engagement", _et="15300"), b""))
    assert (hit.event_name, hit.engagement_time_ms) == ("user_engagement", 15300)


def test_missing_cid_tid_v_or_en_reject_the_event() -> None:
    for missing, reason in (
        ("cid", Reason.MISSING_FIELD),
        ("tid", Reason.MISSING_FIELD),
        ("v", Reason.MISSING_FIELD),
    ):
        params = {k: v for k, v in SHARED.items() if k != missing}
        (outcome,) = parse_gtag(urlencode({**params, "en": "page_view"}), b"")
        assert rejection(outcome) == reason, missing
        assert missing in str(outcome)
    (no_name,) = parse_gtag(query(), b"")
    assert rejection(no_name) == Reason.MISSING_FIELD
    (empty_cid,) = parse_gtag(query(en="page_view", cid=""), b"")
    assert rejection(empty_cid) == Reason.EMPTY_FIELD


def test_malformed_params_reject_the_event() -> None:
    cases = {
        "v=1 is Universal Analytics": ({"v": "1"}, Reason.BAD_ENUM),
        "a name GA4 refuses": ({"en": "9lives"}, Reason.BAD_EVENT_NAME),
        "a name too long": ({"en": "e" * 41}, Reason.BAD_EVENT_NAME),
        "engagement time not in whole ms": ({"_et": "1.5"}, Reason.WRONG_TYPE),
        "engagement time beyond int64": ({"_et": "9" * 20}, Reason.WRONG_TYPE),
        "an over-long page URL": ({"dl": "https://shop.example/" + "a" * 2048}, Reason.TOO_LONG),
    }
    for case, (params, reason) in cases.items():
        (outcome,) = parse_gtag(query(**{"en": "page_view", **params}), b"")
        assert rejection(outcome) == reason, case


def test_one_bad_line_does_not_sink_its_neighbours() -> None:
    body = b"en=page_view\r\nen=bad-name\r\nen=purchase&epn.value=9"
    outcomes = parse_gtag(query(), body)
    assert [rejection(o) if isinstance(o, Rejected) else o.event_name for o in outcomes] == [
        "page_view",
        Reason.BAD_EVENT_NAME,
        "purchase",
    ]


def test_request_level_problems_reject_the_whole_request() -> None:
    with pytest.raises(Rejected) as empty:
        parse_gtag("", b"")
    assert empty.value.reason == Reason.NO_EVENTS
    with pytest.raises(Rejected) as too_many:
        parse_gtag(query(), b"\n".join([b"en=scroll"] * (GTAG_MAX_EVENTS + 1)))
    assert too_many.value.reason == Reason.TOO_MANY_EVENTS
    with pytest.raises(Rejected) as not_text:
        parse_gtag(query(), b"en=page_view&ep.x=\xff\xfe")
    assert not_text.value.reason == Reason.BAD_TEXT


def test_ignore_referrer_drops_dr() -> None:
    hit = only_hit(parse_gtag(query(en="page_view", ir="1"), b""))
    assert hit.page_referrer is None


# -- the "gtag" enrichment steps ----------------------------------------------------------------


def test_tid_names_the_site_by_its_measurement_id_or_its_own_id(settings: Settings) -> None:
    ingest = Ingestor(settings).to_canonical
    assert ingest(only_hit(parse_gtag(query(en="page_view"), b"")), request())["site_id"] == (
        "shop.example"
    )
    by_site_id = only_hit(parse_gtag(query(en="page_view", tid="blog.example"), b""))
    assert ingest(by_site_id, request())["site_id"] == "blog.example"
    for unknown in ("G-OTHER999", "other.example", "shop.example "):
        hit = only_hit(parse_gtag(query(en="page_view", tid=unknown), b""))
        with pytest.raises(Rejected) as rejected:
            ingest(hit, request())
        assert rejected.value.reason == Reason.UNKNOWN_SITE, unknown


def test_the_canonical_event_keeps_no_raw_id_title_or_user_agent(settings: Settings) -> None:
    ingestor = Ingestor(settings)
    hit = only_hit(parse_gtag(query(en="page_view", uid=USER_ID, _et="1200"), b""))
    event = ingestor.to_canonical(hit, request(**{"CF-IPCountry": "de"}))
    text = json.dumps(event)
    raw = (
        CLIENT_ID,
        USER_ID,
        "1731000000",
        "Shop | Home page",
        "198.51.100.9",
        "Windows NT",
        "Gclid-Value-XyZ",  # no hex hash can hold it (a random one once held "abc")
    )
    for secret in raw:
        assert secret not in text
    assert event["site_id"] == "shop.example"
    assert event["visitor_scope"] == "client"
    # The same hash the Measurement Protocol gives the same client_id and user_id.
    assert event["visitor_id"] == ingestor.site_keys.stable_id("shop.example", "client", CLIENT_ID)
    assert event["user_id"] == ingestor.site_keys.stable_id("shop.example", "user", USER_ID)
    assert event["page_url"] == "https://shop.example/?utm_source=newsletter&utm_medium=email"
    assert (event["utm_source"], event["utm_medium"]) == ("newsletter", "email")
    assert event["click_id_type"] == "gclid"
    assert event["page_referrer"] == "https://www.google.com/"
    assert (event["device_category"], event["browser"], event["country"]) == (
        "desktop", "Chrome", "DE",
    )  # fmt: skip
    # The client session id too: the same keyed hash for the same session, never the raw one.
    session = ingestor.site_keys.stable_id("shop.example", "session", "1731000000")
    assert (event["session_id"], event["engagement_time_ms"]) == (session, 1200)
    assert event["event_ts"] == "2026-11-20T12:00:00.000000Z"
    assert len(event["event_id"]) == 32


def test_purchase_and_engagement_signal_become_canonical_events(settings: Settings) -> None:
    ingest = Ingestor(settings).to_canonical
    body = b"en=purchase&epn.value=25.5&cu=USD&ep.transaction_id=T-1\r\nen=user_engagement&_et=9000"
    hits = [hit for hit in parse_gtag(query(), body) if isinstance(hit, Hit)]
    purchase, signal = (ingest(hit, request()) for hit in hits)
    assert (purchase["event_name"], purchase["value"], purchase["currency"]) == (
        "purchase", 25.5, "USD",
    )  # fmt: skip
    assert purchase["transaction_id"] == "T-1"
    assert (signal["event_name"], signal["engagement_time_ms"]) == ("user_engagement", 9000)
    assert purchase["visitor_id"] == signal["visitor_id"]
    assert purchase["event_id"] != signal["event_id"]


def test_validation_still_applies(settings: Settings) -> None:
    ingest = Ingestor(settings).to_canonical
    for params, reason in (
        ({"en": "purchase", "epn.value": "-5"}, Reason.NEGATIVE_AMOUNT),
        ({"en": "purchase", "epn.value": "1e400"}, Reason.VALUE_NOT_FINITE),
        ({"en": "purchase", "cu": "usx"}, Reason.BAD_CURRENCY),
        ({"en": "page_view", "dl": "javascript:alert(1)"}, Reason.BAD_URL),
    ):
        hit = only_hit(parse_gtag(query(**params), b""))
        with pytest.raises(Rejected) as rejected:
            ingest(hit, request())
        assert rejected.value.reason == reason, params


def test_bots_are_dropped(settings: Settings) -> None:
    hit = only_hit(parse_gtag(query(en="page_view"), b""))
    bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    with pytest.raises(Dropped, match="bot"):
        Ingestor(settings).to_canonical(hit, request(bot))
