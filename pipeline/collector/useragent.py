"""Device category, browser, OS and bot flag from a user agent, which is then dropped.

Pure: the only I/O is the packages loading their bundled pattern lists on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import ua_parser
from crawleruseragents import is_crawler
from ua_parser import Device

DESKTOP = "desktop"
MOBILE = "mobile"
TABLET = "tablet"

# Longer strings are not real browsers; cutting them bounds regex time and cache memory
# when a client sends huge or endlessly varied headers.
MAX_USER_AGENT_LENGTH = 1024

# Substrings of ua-parser's device family/brand/model, lower-cased. ua-parser reports
# e.g. "iPad", "Kindle", "Generic Tablet" and brand "Generic_Android_Tablet".
_TABLET_DEVICE_HINTS = ("ipad", "tablet", "kindle")
# "phone" covers "iPhone", "Generic Smartphone", "Generic Feature Phone".
_PHONE_DEVICE_HINTS = ("phone", "ipod")
_PHONE_OS_FAMILIES = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "Symbian OS", "KaiOS", "Firefox OS"}
)


@dataclass(frozen=True)
class ClientInfo:
    device_category: str | None  # DESKTOP, MOBILE or TABLET; None without a user agent
    browser: str | None  # ua-parser family, e.g. "Chrome", "Mobile Safari"
    os: str | None  # ua-parser family, e.g. "Windows", "iOS", "Mac OS X"
    is_bot: bool


_MISSING = ClientInfo(device_category=None, browser=None, os=None, is_bot=True)


# Built on first use, not at import: compiling the pattern set takes a few tenths of a
# second that CLI commands importing this module need not pay.
@cache
def _parser() -> ua_parser.Parser:
    # ua-parser-rs matches the whole uap-core regex set at once in Rust, far faster than
    # the pure-Python resolver; it only needs the pattern strings, so the lazy builtins
    # skip compiling them in Python. Without it, use the library's default stack.
    if ua_parser.RegexResolver is not None:
        return ua_parser.Parser(ua_parser.RegexResolver(ua_parser.load_lazy_builtins()))
    return ua_parser.Parser.from_matchers(ua_parser.load_builtins())


def describe_user_agent(user_agent: str | None) -> ClientInfo:
    """Describe the client behind a User-Agent header value."""
    if user_agent is None or not user_agent.strip():
        # Real browsers always send a user agent.
        return _MISSING
    if len(user_agent) > CACHED_USER_AGENT_LENGTH:
        return _describe(user_agent[:MAX_USER_AGENT_LENGTH])
    return _cached_describe(user_agent)


def _describe(user_agent: str) -> ClientInfo:
    parsed = _parser().parse(user_agent)
    browser = _known(parsed.user_agent.family if parsed.user_agent else None)
    os = _known(parsed.os.family if parsed.os else None)
    is_bot = is_crawler(user_agent) or (
        parsed.device is not None and parsed.device.family == "Spider"
    )
    return ClientInfo(
        device_category=_device_category(user_agent, os, parsed.device),
        browser=browser,
        os=os,
        is_bot=bool(is_bot),
    )


# User agents repeat heavily and this runs on the collector's hot path for every event.
# Real ones are short: those of up to 512 characters are remembered, 16,384 of them, each
# entry at most about 2.5 kB: under 40 MB (about 12 MB for ASCII ones).
CACHED_USER_AGENT_LENGTH = 512
_cached_describe = lru_cache(maxsize=16_384)(_describe)


def _known(family: str | None) -> str | None:
    # ua-parser's "Other" means "no pattern matched": report it as unknown.
    return None if family in (None, "Other") else family


def _device_category(user_agent: str, os: str | None, device: Device | None) -> str:
    device_text = (
        " ".join(part for part in (device.family, device.brand, device.model) if part).lower()
        if device
        else ""
    )
    # Android tablet browsers leave "Mobile" out of the user agent (Google's guidance);
    # ua-parser's device hints catch iPads, Kindles and explicit "Tablet"s.
    if any(hint in device_text for hint in _TABLET_DEVICE_HINTS) or (
        os == "Android" and "Mobile" not in user_agent
    ):
        return TABLET
    # "Mobi" is the token every mainstream phone browser sends (MDN's advice).
    if (
        "Mobi" in user_agent
        or os in _PHONE_OS_FAMILIES
        or any(hint in device_text for hint in _PHONE_DEVICE_HINTS)
    ):
        return MOBILE
    return DESKTOP
