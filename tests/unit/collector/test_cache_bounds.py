"""Every cache on the collector's path keeps short keys only: a long value is computed
each time it comes and never remembered, so the caches' memory has a stated bound."""

from __future__ import annotations

from pathlib import Path

from pipeline.collector import ga4, useragent
from pipeline.collector.enrichment import CACHED_ID_LENGTH, Ingestor
from pipeline.config import load_settings
from pipeline.privacy import urls


def test_a_long_url_is_scrubbed_but_not_remembered() -> None:
    long_url = "https://shop.example/" + "p" * urls.CACHED_URL_LENGTH
    before = urls._cached_scrub_url.cache_info().currsize
    assert urls.scrub_url(long_url).url == long_url
    assert urls._cached_scrub_url.cache_info().currsize == before
    urls.scrub_url(f"https://shop.example/{before}")
    assert urls._cached_scrub_url.cache_info().currsize == before + 1


def test_a_long_user_agent_is_described_but_not_remembered() -> None:
    chrome = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"
    long_agent = chrome + " x" * useragent.CACHED_USER_AGENT_LENGTH
    before = useragent._cached_describe.cache_info().currsize
    assert useragent.describe_user_agent(long_agent).browser == "Chrome"
    assert useragent._cached_describe.cache_info().currsize == before


def test_a_param_name_longer_than_ga4_allows_never_reaches_the_cache() -> None:
    before = ga4._fine_short_param_name.cache_info().currsize
    assert not ga4._fine_param_name("x" * (ga4.GA4_MAX_NAME_LENGTH + 1))
    assert ga4._fine_short_param_name.cache_info().currsize == before


def test_a_long_client_id_is_hashed_but_not_remembered(tmp_path: Path) -> None:
    ingestor = Ingestor(load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path)}))
    long_id = "c" * (CACHED_ID_LENGTH + 1)
    hashed = ingestor._stable_id("shop.example", "client", long_id)
    assert hashed == ingestor.site_keys.stable_id("shop.example", "client", long_id)
    assert ingestor._cached_stable_id.cache_info().currsize == 0
    ingestor._stable_id("shop.example", "client", "1.2")
    assert ingestor._cached_stable_id.cache_info().currsize == 1
