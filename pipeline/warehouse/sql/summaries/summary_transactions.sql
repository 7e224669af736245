-- grain: one row per transaction purchased on the partition (site_id, transaction_id)
-- reads: summary_events
-- unique: site_id, transaction_id
-- not_null: site_id, transaction_id, event_id, event_ts
--
-- summary_transactions: the purchase that would count each transaction among this
-- partition's (an authenticated one before any anonymous one, then by event_ts, event_id:
-- stg_transactions' order, so the window's first is the first of the partitions' firsts).
CREATE OR REPLACE TEMP TABLE summary_transactions AS
SELECT event_date, site_id, transaction_id, event_id, event_ts, is_anonymous, value, currency
FROM summary_events
WHERE event_name = 'purchase' AND transaction_id IS NOT NULL
QUALIFY row_number() OVER (
    PARTITION BY site_id, transaction_id ORDER BY is_anonymous, event_ts, event_id
) = 1
ORDER BY site_id, transaction_id;
