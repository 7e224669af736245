-- Replace partition $event_date's rows of the lake summaries with summary_sessions',
-- summary_transactions' and summary_refunds', and record the fingerprint of the files
-- they were made from ($files). Run inside one transaction.
DELETE FROM lake_partition_sessions WHERE event_date = $event_date::DATE;
INSERT INTO lake_partition_sessions BY NAME SELECT * FROM summary_sessions;
DELETE FROM lake_partition_transactions WHERE event_date = $event_date::DATE;
INSERT INTO lake_partition_transactions BY NAME SELECT * FROM summary_transactions;
DELETE FROM lake_partition_refunds WHERE event_date = $event_date::DATE;
INSERT INTO lake_partition_refunds BY NAME SELECT * FROM summary_refunds;
INSERT OR REPLACE INTO lake_partitions VALUES ($event_date::DATE, $files);
