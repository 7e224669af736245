"""`scrub_page_fields` on Arrow columns: the page rule applied to a whole batch at once.

pipeline.privacy.urls.scrub_page_fields stays the rule. Pages and referrers repeat, so
each distinct URL is scrubbed once (with the same `scrub_url`) and the results are laid
back onto the rows with `take`. A row the per-event rule could reject (a page URL that
scrubs to nothing: bad_url; a utm_* value taken from the URL that is too long) is not
decided here: it is flagged, and the caller runs the per-event path on it for the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.validation import field_rules
from pipeline.privacy.urls import UTM_KEYS, scrub_url


def scrub_page_columns(events: pa.Table) -> tuple[pa.Table, pa.Array]:
    """(events with page fields as the per-event rule leaves them, per-row "decided here")."""
    pages = pc.dictionary_encode(events["page_url"].combine_chunks())
    raw_pages: list[str | None] = pages.dictionary.to_pylist()
    scrubbed = [scrub_url(url) for url in raw_pages]
    # What each distinct page gives, then laid onto the rows with one `take`.
    per_page = pa.table(
        {
            "url": pa.array([s.url for s in scrubbed], pa.string()),
            # A non-empty page URL that scrubs to nothing: bad_url on the per-event path.
            "unusable": pa.array(
                [bool(raw) and s.url is None for raw, s in zip(raw_pages, scrubbed, strict=True)],
                pa.bool_(),
            ),
            "click_id_type": pa.array([s.click_id_type for s in scrubbed], pa.string()),
            **{key: pa.array([s.utm.get(key) for s in scrubbed], pa.string()) for key in UTM_KEYS},
        }
    ).take(pages.indices)
    decided = pc.invert(pc.fill_null(per_page["unusable"], False))
    columns = {name: events[name] for name in events.column_names}
    columns["page_url"] = per_page["url"]
    columns["page_referrer"] = _map_distinct(
        events["page_referrer"], lambda url: scrub_url(url).url
    )
    rules = field_rules()
    for key in UTM_KEYS:
        from_page = per_page[key]
        taken = pc.and_(_absent(events[key]), pc.is_valid(from_page))
        if not pc.any(taken).as_py():
            continue
        # A value taken from the URL is checked as validation checks fields: too_long.
        too_long = pc.greater(pc.utf8_length(from_page), rules[key].max_length or 2**31)
        decided = pc.and_(decided, pc.invert(pc.fill_null(pc.and_(taken, too_long), False)))
        columns[key] = pc.if_else(taken, from_page, events[key])
    click = per_page["click_id_type"]
    take_click = pc.and_(_absent(events["click_id_type"]), pc.is_valid(click))
    columns["click_id_type"] = pc.if_else(take_click, click, events["click_id_type"])
    table = pa.Table.from_arrays(
        [columns[name] for name in events.column_names], schema=events.schema
    )
    if isinstance(decided, pa.ChunkedArray):
        decided = decided.combine_chunks()
    return table, decided


def _absent(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Missing or empty: where the per-event rule lets the page URL fill the field in."""
    return pc.fill_null(pc.or_kleene(pc.is_null(column), pc.equal(column, "")), True)


def _map_distinct(
    column: pa.Array | pa.ChunkedArray, function: Callable[[str], str | None]
) -> pa.Array:
    """`function` over each distinct non-null string once, laid back onto the rows."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    values = [function(value) for value in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(values, pa.string()), encoded.indices)
