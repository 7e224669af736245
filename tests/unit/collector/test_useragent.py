from __future__ import annotations

import pytest
from crawleruseragents import is_crawler

from pipeline.collector.useragent import (
    DESKTOP,
    MAX_USER_AGENT_LENGTH,
    MOBILE,
    TABLET,
    ClientInfo,
    describe_user_agent,
)

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)

# (user agent, device category, browser, os) for real browsers.
BROWSERS = [
    pytest.param(CHROME_WINDOWS, DESKTOP, "Chrome", "Windows", id="chrome-windows"),
    pytest.param(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        DESKTOP,
        "Safari",
        "Mac OS X",
        id="safari-macos",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        DESKTOP,
        "Firefox",
        "Ubuntu",
        id="firefox-linux",
    ),
    pytest.param(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
        DESKTOP,
        "Edge",
        "Windows",
        id="edge-windows",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        DESKTOP,
        "Chrome",
        "Chrome OS",
        id="chromebook",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        MOBILE,
        "Mobile Safari",
        "iOS",
        id="iphone-safari",
    ),
    pytest.param(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        MOBILE,
        "Chrome Mobile iOS",
        "iOS",
        id="iphone-chrome",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        MOBILE,
        "Chrome Mobile",
        "Android",
        id="android-phone",
    ),
    pytest.param(
        # Chrome's reduced user agent: the model is always "K".
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        MOBILE,
        "Chrome Mobile",
        "Android",
        id="android-phone-reduced-ua",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        MOBILE,
        "Samsung Internet",
        "Android",
        id="samsung-internet-phone",
    ),
    pytest.param(
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        MOBILE,
        "Firefox Mobile",
        "Android",
        id="firefox-android-phone",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; "
        "ARM; Touch; NOKIA; Lumia 920)",
        MOBILE,
        "IE Mobile",
        "Windows Phone",
        id="windows-phone",
    ),
    pytest.param(
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        TABLET,
        "Mobile Safari",
        "iOS",
        id="ipad-safari",
    ),
    pytest.param(
        # Has "Mobile" in it, but the device is an iPad.
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.108;FBDV/iPad13,1]",
        TABLET,
        "Facebook",
        "iOS",
        id="ipad-facebook-app",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        TABLET,
        "Chrome",
        "Android",
        id="android-tablet",
    ),
    pytest.param(
        # Same reduced user agent as the phone above, minus "Mobile".
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        TABLET,
        "Chrome",
        "Android",
        id="android-tablet-reduced-ua",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 11; SM-T510) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/20.0 Chrome/106.0.5249.126 Safari/537.36",
        TABLET,
        "Samsung Internet",
        "Android",
        id="samsung-internet-galaxy-tab",
    ),
    pytest.param(
        "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
        TABLET,
        "Firefox Mobile",
        "Android",
        id="firefox-android-tablet",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/124.3.1 like Chrome/124.0.6367.219 Safari/537.36",
        TABLET,
        "Amazon Silk",
        "Android",
        id="kindle-fire",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; U; Linux armv7l like Android; en-us) AppleWebKit/531.2+ "
        "(KHTML, like Gecko) Version/5.0 Safari/533.2+ Kindle/3.0+",
        TABLET,
        "Kindle",
        "Kindle",
        id="kindle-e-reader",
    ),
]

# (user agent, device category) for bots and scripts.
BOTS = [
    pytest.param(
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        DESKTOP,
        id="googlebot",
    ),
    pytest.param(
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.6367.60 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        MOBILE,
        id="googlebot-smartphone",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        DESKTOP,
        id="bingbot",
    ),
    pytest.param(
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        DESKTOP,
        id="ahrefsbot",
    ),
    pytest.param(
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
        "+https://openai.com/gptbot)",
        DESKTOP,
        id="gptbot",
    ),
    pytest.param(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.6367.60 Safari/537.36",
        DESKTOP,
        id="headless-chrome",
    ),
    pytest.param("curl/8.5.0", DESKTOP, id="curl"),
    pytest.param("Wget/1.21.4", DESKTOP, id="wget"),
    pytest.param("python-requests/2.31.0", DESKTOP, id="python-requests"),
]


@pytest.mark.parametrize(("user_agent", "device_category", "browser", "os"), BROWSERS)
def test_real_browsers(user_agent: str, device_category: str, browser: str, os: str) -> None:
    assert describe_user_agent(user_agent) == ClientInfo(
        device_category=device_category, browser=browser, os=os, is_bot=False
    )


@pytest.mark.parametrize(("user_agent", "device_category"), BOTS)
def test_bots_are_flagged(user_agent: str, device_category: str) -> None:
    client = describe_user_agent(user_agent)
    assert client.is_bot
    assert client.device_category == device_category


@pytest.mark.parametrize(
    ("user_agent", "browser"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot"),
        ("curl/8.5.0", "curl"),
        ("python-requests/2.31.0", "Python Requests"),
    ],
)
def test_bots_keep_their_browser_family(user_agent: str, browser: str) -> None:
    assert describe_user_agent(user_agent).browser == browser


@pytest.mark.parametrize(
    ("user_agent", "in_crawler_list"),
    [
        # Only ua-parser's device rules call it a spider.
        ("Mozilla/5.0 (compatible; SomeNewCrawler/1.0; +http://example.com/bot)", False),
        # Only the crawler-user-agents list knows it.
        ("Mozilla/5.0 (compatible; Barkrowler/0.9)", True),
    ],
)
def test_either_detector_alone_flags_a_bot(user_agent: str, in_crawler_list: bool) -> None:
    assert is_crawler(user_agent) == in_crawler_list  # the premise of the case
    assert describe_user_agent(user_agent).is_bot


@pytest.mark.parametrize("user_agent", [None, "", "   "])
def test_missing_user_agent_is_a_bot_with_nothing_known(user_agent: str | None) -> None:
    assert describe_user_agent(user_agent) == ClientInfo(
        device_category=None, browser=None, os=None, is_bot=True
    )


def test_unrecognised_user_agent_maps_other_to_none() -> None:
    assert describe_user_agent("x") == ClientInfo(
        device_category=DESKTOP, browser=None, os=None, is_bot=False
    )


def test_results_are_cached() -> None:
    first = describe_user_agent(CHROME_WINDOWS)
    assert describe_user_agent(CHROME_WINDOWS) is first


def test_overlong_user_agent_is_cut_before_parsing() -> None:
    padded = CHROME_WINDOWS + " " * MAX_USER_AGENT_LENGTH + "Googlebot/2.1"
    assert describe_user_agent(padded) == describe_user_agent(CHROME_WINDOWS)
