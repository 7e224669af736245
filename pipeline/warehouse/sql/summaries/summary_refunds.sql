-- grain: one row per refund naming a transaction (site_id, event_id)
-- reads: summary_events
-- unique: site_id, event_id
-- not_null: site_id, event_id, transaction_id, event_ts
--
-- summary_refunds: the partition's refunds that name a transaction, for the anonymous
-- refunds' shares of a transaction over the build's window (session_facts.sql).
CREATE OR REPLACE TEMP TABLE summary_refunds AS
SELECT event_date, site_id, event_id, transaction_id, event_ts, is_anonymous, value, currency
FROM summary_events
WHERE event_name = 'refund' AND transaction_id IS NOT NULL
ORDER BY site_id, event_id;
