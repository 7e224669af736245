-- grain: one row per transaction of the build's window (site_id, transaction_id)
-- reads: stg_lake_events
-- unique: site_id, transaction_id
-- not_null: site_id, transaction_id, counted_event_id
-- stg_transactions: each transaction of the build's window, once per site (grain:
-- site_id x transaction_id): the purchase that counts it (its first, by event_ts then
-- event_id, an authenticated one before any anonymous one: an anonymous purchase never
-- takes an authenticated purchase's transaction id) and that purchase's amount. GA4
-- drops repeated transactions the same way; a repeat sent more than the window (the
-- daily look-back plus max_session_days) after the first is not recognised.
CREATE OR REPLACE TEMP TABLE stg_transactions AS
SELECT
    site_id,
    transaction_id,
    event_id AS counted_event_id,
    value_site AS purchase_value,
    is_anonymous AS purchase_is_anonymous
FROM stg_lake_events
WHERE event_name = 'purchase' AND transaction_id IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY site_id, transaction_id ORDER BY is_anonymous, event_ts, event_id
) = 1
ORDER BY site_id, transaction_id;
