"""Attribution of each event: GA4 source, medium, campaign and default channel group,
derived once.

The lake stores the result beside the event, with `RULES_VERSION`, so the warehouse
reads a session's source, medium and channel from its first event instead of deriving
them again; a build can see which rules a row was attributed with. Change the rules in
pipeline.sessions.channels, bump `RULES_VERSION`: rows written before keep their old
attribution until they are imported again.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import pyarrow as pa

from pipeline.sessions.channels import default_channel_group, source_medium

# 2: source categories from Google's published list (pipeline/sessions/data/); source,
#    medium and campaign normalised (`attribution_key`, `campaign_key`).
RULES_VERSION = 2
# The event columns attribution reads, in the order `_attribution` takes them.
INPUTS = ("utm_source", "utm_medium", "utm_campaign", "click_id_type", "page_referrer", "site_id")
OUTPUTS = ("source", "medium", "campaign", "channel_group", "attribution_rules")
NOT_SET = "(not set)"


def attribution_key(value: str) -> str:
    """Source and medium as sessions and costs are matched: trimmed, lower case."""
    return value.strip().lower()


def campaign_key(value: str | None) -> str:
    """A campaign as sessions and costs are matched: trimmed, lower case; a missing or
    empty one is GA4's "(not set)", on both sides alike."""
    key = attribution_key(value or "")
    return key or NOT_SET


def attribute(events: pa.Table) -> pa.Table:
    """`events` with the columns of OUTPUTS added."""
    values = zip(*(events[name].to_pylist() for name in INPUTS), strict=True)
    derived = [_attribution(*row) for row in values]
    columns = {
        "source": pa.array([row[0] for row in derived], pa.string()),
        "medium": pa.array([row[1] for row in derived], pa.string()),
        "campaign": pa.array([row[2] for row in derived], pa.string()),
        "channel_group": pa.array([row[3] for row in derived], pa.string()),
        "attribution_rules": pa.array([RULES_VERSION] * events.num_rows, pa.int32()),
    }
    for name in OUTPUTS:
        events = events.append_column(name, columns[name])
    return events


@lru_cache(maxsize=65_536)  # a day's traffic has few distinct combinations
def _attribution(
    utm_source: str | None,
    utm_medium: str | None,
    utm_campaign: str | None,
    click_id_type: str | None,
    page_referrer: str | None,
    site_id: str,
) -> tuple[str, str, str, str]:
    referrer_host = urlsplit(page_referrer).hostname if page_referrer else None
    source, medium = source_medium(utm_source, utm_medium, click_id_type, referrer_host, site_id)
    source, medium = attribution_key(source), attribution_key(medium)
    channel = default_channel_group(source, medium, utm_campaign)
    return source, medium, campaign_key(utm_campaign), channel
