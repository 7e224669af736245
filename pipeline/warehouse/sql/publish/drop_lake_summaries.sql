-- The lake summaries, all together (publish/lake_summaries.sql makes them again): when
-- the summary models change, every partition is summarised again by the new ones.
DROP TABLE IF EXISTS lake_partitions;
DROP TABLE IF EXISTS lake_partition_sessions;
DROP TABLE IF EXISTS lake_partition_transactions;
DROP TABLE IF EXISTS lake_partition_refunds;
DROP TABLE IF EXISTS lake_session_touches;
