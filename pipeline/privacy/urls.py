"""Page and referrer URLs reduced to what analytics needs and nothing personal.

Only absolute http(s) URLs survive. Userinfo, a default port, the fragment and every
query parameter except ``utm_*`` are dropped; an ad click id is kept as its type, never
its value; personal data in the path or a utm_* value (an e-mail or IP address, a phone
number, a GA client id, user-agent text: pipeline.events.personal_data) is redacted.

`scrub_page_fields` is the one rule for an event's page fields: the collector applies it
to every hit (pipeline.collector.enrichment), and the consumer and `import` apply it
again to every record they accept (pipeline.lake.processing), so events that never
passed the collector are scrubbed alike and carry the same campaign fields, hence the same
attribution. It is idempotent: an event the collector produced comes out unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from pipeline.events.personal_data import (
    personal_data_in,
    redact_personal_data,
    user_agent_start,
)
from pipeline.events.reasons import Reason, Rejected
from pipeline.events.validation import Event, check_field_types

# Parameters that ad platforms append to a landing URL to identify one ad click.
# Lower-case; names are matched case-insensitively. Left out on purpose: gclsrc only
# qualifies a gclid, and mc_eid / _kx identify an e-mail recipient, not a click.
CLICK_ID_PARAMS = frozenset(
    {
        "gclid",  # Google Ads
        "gbraid",  # Google Ads, iOS app-to-web
        "wbraid",  # Google Ads, iOS web-to-app
        "dclid",  # Google Campaign Manager 360 / Display & Video 360
        "msclkid",  # Microsoft Advertising
        "fbclid",  # Meta (added to organic links too)
        "ttclid",  # TikTok
        "twclid",  # X / Twitter
        "li_fat_id",  # LinkedIn
        "yclid",  # Yandex
        "epik",  # Pinterest
        "rdt_cid",  # Reddit
        "sccid",  # Snapchat (sent as ScCid)
        "irclickid",  # Impact (affiliate network)
    }
)

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_URL_LENGTH = 2048

_DEFAULT_PORTS = {"http": 80, "https": 443}
# A DNS name (internationalised ones too) or a bracket-less IPv6 literal. Anything
# else, e.g. a percent-encoded host, is rejected rather than stored.
_VALID_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?|[0-9a-f:.]*:[0-9a-f:.]*")
_MAX_HOST_LENGTH = 253
# Characters a path segment may carry unencoded (RFC 3986 pchar), plus "[]" so that a
# redaction reads "[email]". Everything else, including spaces and non-ASCII, is encoded.
_PATH_SAFE = "!$&'()*+,;=:@[]"

_PARTIAL_ESCAPE_AT_END = re.compile(r"%[0-9A-Fa-f]?$")


@dataclass(frozen=True)
class ScrubbedUrl:
    url: str | None
    host: str | None  # lower-case, without port
    utm: dict[str, str] = field(default_factory=dict)  # UTM_KEYS present, lower-case keys
    click_id_type: str | None = None  # lower-case parameter name, e.g. "gclid"


# Pages and referrers repeat: URLs of up to 512 characters are remembered, 8192 of them,
# each entry at most about 7 kB (2 kB of key, a 2048-character URL, its utm_* values):
# under 60 MB, about 20 MB for ASCII URLs. Longer ones are scrubbed anew each time.
CACHED_URL_LENGTH = 512


def scrub_url(raw: str | None) -> ScrubbedUrl:
    """Reduce a URL to scheme, host, non-default port, path and utm_* parameters.

    Anything but an absolute http(s) URL gives an empty result (url None). Results are
    shared: they never mutate.
    """
    if raw is not None and len(raw) > CACHED_URL_LENGTH:
        return _scrub_url(raw)
    return _cached_scrub_url(raw)


def _scrub_url(raw: str | None) -> ScrubbedUrl:
    try:
        scrubbed = None if raw is None else _scrub(raw)
    except ValueError:
        # urlsplit: malformed IPv6 host or port; str.encode: lone surrogates, not text.
        scrubbed = None
    return scrubbed or ScrubbedUrl(url=None, host=None)


_cached_scrub_url = lru_cache(maxsize=8192)(_scrub_url)


def scrub_page_fields(event: Event) -> Event:
    """`event` with page_url and page_referrer scrubbed, and the utm_* fields and the
    click_id_type it does not give (absent or empty) taken from page_url: explicit campaign
    fields win over the landing page's parameters. Changed in place and returned.

    A page_url that is not an absolute http(s) URL rejects the event (Reason.BAD_URL):
    kept, it would keep whatever it holds; dropped, the page would be lost unseen. A
    referrer that is not one is dropped, as a field scrubbed to nothing is. The utm_*
    values taken from page_url are checked as validation checks fields (one may be too
    long), so a valid event stays valid. Personal data in explicit utm_* fields is
    validation's to redact (pipeline.events.validation.redact_free_text), as in any free
    text; in the URL's own utm_* values, scrub_url redacts it.
    Idempotent: a second pass changes nothing.
    """
    raw_url = event.get("page_url")
    page = scrub_url(raw_url)
    if raw_url and page.url is None:
        raise Rejected(Reason.BAD_URL, "page url must be an absolute http(s) URL")
    _put(event, "page_url", page.url)
    _put(event, "page_referrer", scrub_url(event.get("page_referrer")).url)
    taken = {key: value for key, value in page.utm.items() if not event.get(key)}
    if taken:
        event.update(check_field_types(taken))
    if page.click_id_type is not None and not event.get("click_id_type"):
        event["click_id_type"] = page.click_id_type
    return event


def _put(event: Event, name: str, value: str | None) -> None:
    if value is None:
        event.pop(name, None)
    else:
        event[name] = value


# An IP address as host is personal data (a visitor's own server, a home router): it is
# replaced by a name that can never resolve (RFC 2606's .invalid), so that the URL still
# parses as one ("https://[ip]/" would not: brackets hold only IPv6 addresses).
IP_HOST = "ip.invalid"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _scrub(raw: str) -> ScrubbedUrl | None:
    raw.encode()  # raises for lone surrogates, which no encoder downstream accepts
    parts = urlsplit(raw.strip())
    host = parts.hostname  # lower-cased, without userinfo, port or IPv6 brackets
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not host
        or len(host) > _MAX_HOST_LENGTH
        or not _VALID_HOST.fullmatch(host)
    ):
        return None

    if _is_ip(host):
        host = IP_HOST
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != _DEFAULT_PORTS[parts.scheme]:
        netloc += f":{parts.port}"
    base = f"{parts.scheme}://{netloc}"
    path = _clean_path(parts.path or "/")

    params = parse_qsl(parts.query, keep_blank_values=True)
    # Redact before filtering: an address can swallow the "utm_" of a name.
    redacted = ((redact_personal_data(n), redact_personal_data(v)) for n, v in params)
    utm_params = [(name, value) for name, value in redacted if name.lower().startswith("utm_")]
    url = _join(base, path, utm_params)
    # Over the limit: drop whole utm parameters from the end, then cut the path, so
    # that the result still scrubs to itself.
    while len(url) > MAX_URL_LENGTH and utm_params:
        utm_params.pop()
        url = _join(base, path, utm_params)
    if len(url) > MAX_URL_LENGTH:
        url = _PARTIAL_ESCAPE_AT_END.sub("", url[:MAX_URL_LENGTH])

    return ScrubbedUrl(
        url=url, host=host, utm=_known_utm(utm_params), click_id_type=_click_id_type(params)
    )


def _join(base: str, path: str, params: list[tuple[str, str]]) -> str:
    query = urlencode(params, safe="[]")
    return f"{base}{path}?{query}" if query else f"{base}{path}"


def _clean_path(path: str) -> str:
    # A user agent holds "/", so it spans segments: the path is cut where one starts.
    decoded = unquote(path)
    start = user_agent_start(decoded)
    if start is not None:
        return _clean_path(quote(decoded[:start], safe=_PATH_SAFE + "/")) + "[user-agent]"
    return "/".join(_clean_path_segment(segment) for segment in path.split("/"))


def _clean_path_segment(segment: str) -> str:
    decoded = unquote(segment)
    if personal_data_in(decoded) is not None:
        return quote(redact_personal_data(decoded), safe=_PATH_SAFE)
    # Existing escapes ("%" kept as is) stay untouched; only raw unsafe characters
    # are encoded, as a browser would.
    return quote(segment, safe=_PATH_SAFE + "%")


def _known_utm(utm_params: list[tuple[str, str]]) -> dict[str, str]:
    # The first non-empty value of each known key wins; an empty one carries nothing.
    utm: dict[str, str] = {}
    for name, value in utm_params:
        key = name.lower()
        if key in UTM_KEYS and value and key not in utm:
            utm[key] = value
    return utm


def _click_id_type(params: list[tuple[str, str]]) -> str | None:
    # An empty value is no click.
    return next(
        (name.lower() for name, value in params if value and name.lower() in CLICK_ID_PARAMS),
        None,
    )
