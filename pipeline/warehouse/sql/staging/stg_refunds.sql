-- grain: one row per refund of the build's window that names a transaction (site_id, event_date, event_id)
-- reads: lake_partition_refunds, site_settings, stg_site_currencies
-- unique: site_id, event_date, event_id
-- not_null: site_id, event_id, transaction_id, event_ts
--
-- stg_refunds: the window's refunds that name a transaction, with their amount in the
-- site's currency, from the lake summaries: the anonymous refunds of a transaction share
-- its amount in the order they came (session_facts.sql, anonymous_refund_shares).
--
-- Parameters: $window_start, $window_end (BuildWindow.events), $currency.
CREATE OR REPLACE TEMP TABLE stg_refunds AS
SELECT
    r.event_date,
    r.site_id,
    r.event_id,
    r.transaction_id,
    r.event_ts,
    r.is_anonymous,
    r.value,
    site_amount(r.value, r.currency, coalesce(s.currency, $currency), f.factor) AS value_site
FROM lake_partition_refunds AS r
LEFT JOIN site_settings AS s USING (site_id)
LEFT JOIN stg_site_currencies AS f ON f.site_id = r.site_id AND f.currency = r.currency
WHERE r.event_date BETWEEN $window_start::DATE AND $window_end::DATE
ORDER BY r.site_id, r.event_id;
