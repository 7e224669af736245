-- grain: one row per transaction of the build's window (site_id, transaction_id)
-- reads: lake_partition_transactions, site_settings, stg_site_currencies
-- unique: site_id, transaction_id
-- not_null: site_id, transaction_id, counted_event_id
--
-- stg_transactions: each transaction of the build's window, once per site: the purchase
-- that counts it (its first, by event_ts then event_id, an authenticated one before any
-- anonymous one: an anonymous purchase never takes an authenticated purchase's
-- transaction id) and that purchase's amount in the site's currency. GA4 drops repeated
-- transactions the same way; a repeat sent more than the window (the daily look-back
-- plus max_session_days) after the first is not recognised. Read from the lake
-- summaries (each partition's first purchase of each transaction), not raw events.
--
-- Parameters: $window_start, $window_end (BuildWindow.events), $currency.
CREATE OR REPLACE TEMP TABLE stg_transactions AS
WITH firsts AS (
    SELECT *
    FROM lake_partition_transactions
    WHERE event_date BETWEEN $window_start::DATE AND $window_end::DATE
    QUALIFY row_number() OVER (
        PARTITION BY site_id, transaction_id ORDER BY is_anonymous, event_ts, event_id
    ) = 1
)

SELECT
    t.site_id,
    t.transaction_id,
    t.event_id AS counted_event_id,
    site_amount(t.value, t.currency, coalesce(s.currency, $currency), f.factor)
        AS purchase_value,
    t.is_anonymous AS purchase_is_anonymous
FROM firsts AS t
LEFT JOIN site_settings AS s USING (site_id)
LEFT JOIN stg_site_currencies AS f ON f.site_id = t.site_id AND f.currency = t.currency
ORDER BY t.site_id, t.transaction_id;
