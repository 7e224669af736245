from __future__ import annotations

import dataclasses
import string
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains

from pipeline.config import load_settings
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.timestamps import collector_window, parse_event_ts
from pipeline.events.validation import Event, validate_event
from pipeline.privacy.redaction import EMAIL_PLACEHOLDER
from pipeline.privacy.urls import (
    CLICK_ID_PARAMS,
    MAX_URL_LENGTH,
    UTM_KEYS,
    ScrubbedUrl,
    scrub_page_fields,
    scrub_url,
)

REJECTED = ScrubbedUrl(url=None, host=None, utm={}, click_id_type=None)


# --- Examples ---------------------------------------------------------------------


def test_keeps_scheme_host_path_and_utm_only() -> None:
    scrubbed = scrub_url(
        "https://Jane:s3cret@WWW.Example.COM/Products/Shoes?size=42&utm_source=newsletter"
        "&session=abc123&utm_medium=email&gclid=EAIaIQobChMI&utm_campaign=spring#reviews"
    )
    assert scrubbed == ScrubbedUrl(
        url="https://www.example.com/Products/Shoes"
        "?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
        host="www.example.com",
        utm={"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"},
        click_id_type="gclid",
    )


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com", "https://example.com/"),
        ("HTTPS://EXAMPLE.com/Case/Kept", "https://example.com/Case/Kept"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("http://[2001:DB8::1]:8080/a", "http://ip.invalid:8080/a"),
        ("http://192.0.2.1/a", "http://ip.invalid/a"),
        ("https://bücher.example/straße", "https://bücher.example/stra%C3%9Fe"),
        ("https://example.com/a b/%7Ex", "https://example.com/a%20b/%7Ex"),
        ("https://example.com/a#utm_source=fragment", "https://example.com/a"),
    ],
)
def test_origin_and_path_normalisation(raw: str, url: str) -> None:
    assert scrub_url(raw).url == url


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "/relative/path",
        "example.com/no-scheme",
        "//example.com/scheme-relative",
        "ftp://example.com/file",
        "mailto:jane@example.com",
        "javascript:alert(1)",
        "data:text/html,hello",
        "http://",
        "http:///path-only",
        "https://example.com:99999/",
        "https://example.com:port/",
        "http://[::1/",
        "http://jane%40example.com/",
        "http://exa mple.com/",
        "http://" + "a" * 254 + "/",
        "https://example.com/\ud800",
    ],
)
def test_rejects_anything_but_absolute_http_urls(raw: str | None) -> None:
    assert scrub_url(raw) == REJECTED


def test_utm_parameters_keep_their_order_and_unknown_ones_stay_in_the_url_only() -> None:
    scrubbed = scrub_url(
        "https://example.com/?utm_content=hero&UTM_Source=Google&utm_id=42&utm_source=second"
        "&utm_term=&utm_medium=cpc"
    )
    assert scrubbed.url == (
        "https://example.com/?utm_content=hero&UTM_Source=Google&utm_id=42&utm_source=second"
        "&utm_term=&utm_medium=cpc"
    )
    # Lower-case keys, first non-empty value, only the five known keys.
    assert scrubbed.utm == {"utm_content": "hero", "utm_source": "Google", "utm_medium": "cpc"}


def test_utm_values_are_decoded_in_utm_and_re_encoded_in_the_url() -> None:
    scrubbed = scrub_url("https://example.com/?utm_campaign=summer%20sale%2B&utm_term=a+b")
    assert scrubbed.utm == {"utm_campaign": "summer sale+", "utm_term": "a b"}
    assert scrubbed.url == "https://example.com/?utm_campaign=summer+sale%2B&utm_term=a+b"


@pytest.mark.parametrize(
    ("query", "click_id_type"),
    [
        ("gclid=abc", "gclid"),
        ("GCLID=abc", "gclid"),
        ("ScCid=abc", "sccid"),
        ("li_fat_id=abc", "li_fat_id"),
        ("msclkid=abc&gclid=def", "msclkid"),
        ("fbclid=abc", "fbclid"),
        ("gclid=", None),
        ("gclsrc=aw.ds", None),
        ("mc_eid=abc", None),
        ("utm_source=gclid", None),
        ("", None),
    ],
)
def test_click_id_type_is_the_first_click_id_present(query: str, click_id_type: str | None) -> None:
    scrubbed = scrub_url(f"https://example.com/landing?{query}")
    assert scrubbed.click_id_type == click_id_type
    assert "abc" not in repr(scrubbed)


def test_click_id_params_are_lower_case_and_exclude_non_click_ids() -> None:
    assert all(name == name.lower() for name in CLICK_ID_PARAMS)
    assert {"gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "sccid"} <= CLICK_ID_PARAMS
    assert not {"gclsrc", "mc_eid", "mc_cid", "utm_id"} & CLICK_ID_PARAMS


@pytest.mark.parametrize(
    ("raw", "url"),
    [
        ("https://example.com/u/jane.doe@example.com/edit", "https://example.com/u/[email]/edit"),
        ("https://example.com/u/jane%40example.com", "https://example.com/u/[email]"),
        ("https://example.com/u/jane%2540example.com", "https://example.com/u/[email]"),
        ("https://example.com/u/Jane.Doe%2Btag%40Example.CO.UK", "https://example.com/u/[email]"),
        ("https://example.com/to:jane@example.com;x", "https://example.com/to:[email];x"),
        (
            "https://example.com/?utm_content=jane%40example.com&utm_term=hi+bob@example.org",
            "https://example.com/?utm_content=[email]&utm_term=hi+[email]",
        ),
        ("https://example.com/?utm_jane@example.com=1", "https://example.com/"),
        # Characters allowed in an address's local part are redacted with it.
        ("https://example.com/?utm_x_jane@example.com=1", "https://example.com/"),
        (
            "https://example.com/?utm_to:jane@example.com=1",
            "https://example.com/?utm_to%3A[email]=1",
        ),
        # Not addresses: a handle and a package version.
        ("https://example.com/@jane", "https://example.com/@jane"),
        ("https://example.com/react@18.2.0", "https://example.com/react@18.2.0"),
    ],
)
def test_email_addresses_are_redacted(raw: str, url: str) -> None:
    assert scrub_url(raw).url == url


def test_redacted_utm_value_is_redacted_in_utm_too() -> None:
    scrubbed = scrub_url("https://example.com/?utm_source=jane@example.com")
    assert scrubbed.utm == {"utm_source": EMAIL_PLACEHOLDER}


def test_email_search_stays_fast_on_hostile_input() -> None:
    # A naive pattern backtracks quadratically over long runs of address characters.
    scrub_url("https://example.com/" + "a" * 200_000 + "?utm_content=" + "b." * 100_000)


def test_long_url_drops_trailing_utm_parameters_whole() -> None:
    long_value = "x" * 1500
    scrubbed = scrub_url(
        f"https://example.com/?utm_source=news&utm_content={long_value}&utm_term={long_value}"
    )
    assert scrubbed.url == f"https://example.com/?utm_source=news&utm_content={long_value}"
    assert scrubbed.utm == {"utm_source": "news", "utm_content": long_value}


def test_long_path_is_cut_without_leaving_a_partial_escape() -> None:
    scrubbed = scrub_url("https://example.com/" + "%C3%A9" * 1000 + "?utm_source=news")
    assert scrubbed.url is not None
    assert len(scrubbed.url) <= MAX_URL_LENGTH
    assert scrubbed.url.endswith("%C3%A9")
    assert scrubbed.utm == {}


# --- Properties -------------------------------------------------------------------

text = st.text(max_size=12)
non_utm_names = st.one_of(
    st.sampled_from([*sorted(CLICK_ID_PARAMS), "email", "token", "GCLID", "mc_eid"]),
    text.filter(lambda name: not name.lower().startswith("utm_")),
)
utm_names = st.one_of(
    st.sampled_from([*UTM_KEYS, "utm_id", "UTM_Source"]), text.map("utm_".__add__)
)
hosts = st.one_of(
    domains(),
    st.sampled_from(["localhost", "192.0.2.1", "[2001:db8::1]", "bücher.example", "EXAMPLE.com"]),
)


@dataclass(frozen=True)
class UrlParts:
    scheme: str
    userinfo: str
    host: str
    port: int | None
    path_segments: list[str]
    params: list[tuple[str, str]]
    fragment: str

    def build(self, params: list[tuple[str, str]] | None = None) -> str:
        port = "" if self.port is None else f":{self.port}"
        path = "/".join(self.path_segments)
        query = urlencode(self.params if params is None else params)
        return f"{self.scheme}://{self.userinfo}{self.host}{port}/{path}?{query}#{self.fragment}"


url_parts = st.builds(
    UrlParts,
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    userinfo=st.sampled_from(["", "jane:s3cret@", "jane@example.org@"]),
    host=hosts,
    port=st.none() | st.integers(min_value=0, max_value=65535),
    path_segments=st.lists(
        st.builds(quote, st.text(max_size=30), safe=st.sampled_from(["", "@", "!$&'()*+,;=:@"])),
        max_size=5,
    ),
    params=st.lists(st.tuples(utm_names | non_utm_names, st.text(max_size=400)), max_size=8),
    fragment=text,
)
secret_tokens = st.text(string.ascii_letters + string.digits, min_size=16, max_size=32)


@settings(max_examples=300)
@given(url_parts, non_utm_names, secret_tokens | st.emails(), st.integers(min_value=0))
def test_values_of_other_query_parameters_never_survive(
    parts: UrlParts, name: str, secret: str, position: int
) -> None:
    params = list(parts.params)
    params.insert(position % (len(params) + 1), (name, secret))
    without_secret = scrub_url(parts.build())
    assume(secret not in repr(without_secret))

    scrubbed = scrub_url(parts.build(params))

    assert secret not in repr(scrubbed)
    assert scrubbed.url is None or secret not in unquote(scrubbed.url)
    # Adding the parameter changes nothing else, except maybe which click id came first.
    assert (scrubbed.url, scrubbed.host, scrubbed.utm) == (
        without_secret.url,
        without_secret.host,
        without_secret.utm,
    )


def at_sign_raw(address: str) -> str:
    return quote(address, safe="@")


def fully_encoded(address: str) -> str:
    return quote(address, safe="")


def encoded_twice(address: str) -> str:
    return quote(quote(address, safe=""), safe="")


@settings(max_examples=300)
@given(
    url_parts,
    st.emails(),
    st.sampled_from([at_sign_raw, fully_encoded, encoded_twice]),
    text,
    text,
    st.integers(min_value=0),
)
def test_email_addresses_never_survive_in_path_segments(
    parts: UrlParts,
    address: str,
    encode: Callable[[str], str],
    before: str,
    after: str,
    position: int,
) -> None:
    segments = list(parts.path_segments)
    segment = quote(before, safe="") + encode(address) + quote(after, safe="")
    segments.insert(position % (len(segments) + 1), segment)
    scrubbed = scrub_url(dataclasses.replace(parts, path_segments=segments).build())
    assert_no_address(scrubbed, address)


@settings(max_examples=300)
@given(url_parts, utm_names, st.emails(), text, text, st.integers(min_value=0))
def test_email_addresses_never_survive_in_utm_values(
    parts: UrlParts, name: str, address: str, before: str, after: str, position: int
) -> None:
    params = list(parts.params)
    params.insert(position % (len(params) + 1), (name, before + address + after))
    assert_no_address(scrub_url(parts.build(params)), address)


def assert_no_address(scrubbed: ScrubbedUrl, address: str) -> None:
    assert scrubbed.url is not None
    assert address not in scrubbed.url
    assert address not in unquote(scrubbed.url)
    assert all(address not in value for value in scrubbed.utm.values())


@settings(max_examples=300)
@given(url_parts)
def test_output_shape(parts: UrlParts) -> None:
    scrubbed = scrub_url(parts.build())
    assert scrubbed.url is not None
    assert len(scrubbed.url) <= MAX_URL_LENGTH
    split = urlsplit(scrubbed.url)
    assert not split.fragment
    assert split.username is None
    assert split.hostname == scrubbed.host
    assert all(name.lower().startswith("utm_") for name, _ in parse_qsl(split.query))
    assert set(scrubbed.utm) <= set(UTM_KEYS)


def assert_idempotent(scrubbed: ScrubbedUrl) -> None:
    # Click ids never reach the URL, so only their type can differ on a second pass.
    assert scrub_url(scrubbed.url) == dataclasses.replace(scrubbed, click_id_type=None)


@settings(max_examples=300)
@given(url_parts)
def test_idempotent_on_urls(parts: UrlParts) -> None:
    assert_idempotent(scrub_url(parts.build()))


@settings(max_examples=300)
@given(st.sampled_from(["", "http://", "https://example.com/"]), st.text())
def test_idempotent_and_total_on_arbitrary_text(prefix: str, rest: str) -> None:
    scrubbed = scrub_url(prefix + rest)
    if scrubbed.url is not None:
        assert_idempotent(scrubbed)


# --- The page rule (collector, consumer and `import` alike) ---------------------------


def test_page_rule_explicit_fields_win_and_the_url_fills_the_rest() -> None:
    event: Event = {
        "page_url": "https://Shop.example/a?utm_source=fb&utm_medium=social&utm_term=shoes"
        "&msclkid=X1&email=jane@example.com",
        "page_referrer": "https://www.bing.com/search?q=shoes",
        "utm_source": "google",
        "utm_medium": "",  # empty: not given
        "event_id": "e1",
    }
    assert scrub_page_fields(event) == {
        "page_url": "https://shop.example/a?utm_source=fb&utm_medium=social&utm_term=shoes",
        "page_referrer": "https://www.bing.com/search",
        "utm_source": "google",
        "utm_medium": "social",
        "utm_term": "shoes",
        "click_id_type": "msclkid",
        "event_id": "e1",
    }


def test_an_address_typed_into_a_campaign_field_is_redacted_before_the_page_rule() -> None:
    # Explicit campaign fields are free text: validation redacts them (every route runs it
    # beside the page rule), and the page rule keeps what it is given.
    raw: Event = {
        "event_id": "e-1", "event_name": "page_view", "event_ts": "2026-11-20T12:00:00Z",
        "site_id": "shop.example", "visitor_id": "v-1",
        "utm_campaign": "promo for jane.doe@example.com", "utm_source": "news",
    }  # fmt: skip
    now = parse_event_ts("2026-11-20T12:00:00Z")
    window = collector_window(load_settings(environ={}).validation)
    scrubbed = scrub_page_fields(validate_event(raw, now_micros=now, window=window))
    assert scrubbed["utm_campaign"] == "promo for [email]"
    assert scrubbed["utm_source"] == "news"
    assert scrub_page_fields(dict(scrubbed)) == scrubbed


def test_page_rule_keeps_an_explicit_click_id_type_and_drops_what_scrubs_to_nothing() -> None:
    event: Event = {
        "page_url": "https://shop.example/?gclid=abc",
        "page_referrer": "android-app://com.google.android.gm",
        "click_id_type": "dclid",
    }
    assert scrub_page_fields(event) == {
        "page_url": "https://shop.example/",
        "click_id_type": "dclid",
    }
    assert scrub_page_fields({"page_url": ""}) == {}
    assert scrub_page_fields({"event_id": "e2"}) == {"event_id": "e2"}


@pytest.mark.parametrize("page_url", ["/relative?x=1", "mailto:jane@example.com", "ftp://x/"])
def test_page_rule_rejects_a_page_url_that_is_not_absolute_http(page_url: str) -> None:
    with pytest.raises(Rejected) as raised:
        scrub_page_fields({"page_url": page_url})
    assert raised.value.reason == Reason.BAD_URL


def test_page_rule_checks_the_utm_values_it_takes() -> None:
    with pytest.raises(Rejected, match="too_long: utm_content"):
        scrub_page_fields({"page_url": "https://shop.example/?utm_content=" + "x" * 257})
    # Given explicitly, the URL's value is not taken, so not checked either.
    explicit = {"page_url": "https://shop.example/?utm_content=" + "x" * 257, "utm_content": "a"}
    assert scrub_page_fields(explicit)["utm_content"] == "a"


explicit_fields = st.dictionaries(
    st.sampled_from([*UTM_KEYS, "click_id_type"]), st.sampled_from(["", "google", "gclid"])
)


@settings(max_examples=300)
@given(url_parts, st.none() | url_parts, explicit_fields)
def test_page_rule_is_idempotent(
    page: UrlParts, referrer: UrlParts | None, explicit: dict[str, str]
) -> None:
    event: Event = {"page_url": page.build(), **explicit}
    if referrer is not None:
        event["page_referrer"] = referrer.build()
    try:
        once = scrub_page_fields(dict(event))
    except Rejected as rejected:
        assume(rejected.reason != Reason.TOO_LONG)
        raise
    assert scrub_page_fields(dict(once)) == once
