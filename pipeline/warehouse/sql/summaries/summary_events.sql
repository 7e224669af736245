-- grain: one row per event of one lake partition (site_id, event_id)
-- reads: lake
-- not_null: site_id, event_id, session_id
-- (unique by construction, lake_events: not checked, to spare a grouping of the whole partition)
--
-- summary_events: the columns the partition summaries need, of the events of one lake
-- partition ($partition_files: its parquet files, and an empty file in today's schema).
CREATE OR REPLACE TEMP TABLE summary_events AS
SELECT
    event_date, session_id, site_id, visitor_id, event_id, event_ts, event_name, user_id,
    source, medium, campaign, channel_group, visitor_scope, client_session_id,
    transaction_id, value, currency, is_anonymous, is_engagement_signal
FROM lake_events($partition_files::VARCHAR[]);
