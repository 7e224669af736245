-- grain: one row per session with events on the partition (session_id)
-- reads: summary_events
-- unique: session_id
-- not_null: session_id, site_id, event_date, last_ts
--
-- summary_sessions: what later builds need of the part of each session that falls on this
-- partition (the columns of lake_partition_sessions): where it starts, its first touch
-- and first user_id (for last non-direct attribution, stg_touches), and whether its
-- visitor id is a stable client id (session_facts.sql, user_key). Each "first" carries its
-- (event_ts, event_id) so the parts of a session on several partitions combine exactly.
CREATE OR REPLACE TEMP TABLE summary_sessions AS
WITH parts AS (
    SELECT
        event_date,
        session_id,
        any_value(site_id) AS site_id,
        min(visitor_id) AS visitor_id,
        arg_min(
            {'ts': event_ts, 'event_id': event_id, 'source': source, 'medium': medium,
             'campaign': campaign, 'channel_group': channel_group},
            (event_ts, event_id)
        ) FILTER (WHERE NOT is_engagement_signal) AS first_event,
        max(event_ts) AS last_ts,
        arg_min(
            {'user_id': user_id, 'ts': event_ts, 'event_id': event_id}, (event_ts, event_id)
        ) FILTER (WHERE user_id IS NOT NULL AND NOT is_engagement_signal) AS first_user,
        coalesce(
            bool_or(
                visitor_scope = 'client'
                OR (visitor_scope IS NULL AND client_session_id IS NOT NULL)
            ),
            false
        ) AS stable_client
    FROM summary_events
    GROUP BY event_date, session_id
)

SELECT
    event_date,
    session_id,
    site_id,
    visitor_id,
    first_event.ts AS first_ts,
    first_event.event_id AS first_event_id,
    last_ts,
    first_event.source AS source,
    first_event.medium AS medium,
    first_event.campaign AS campaign,
    first_event.channel_group AS channel_group,
    first_user.user_id AS user_id,
    first_user.ts AS user_ts,
    first_user.event_id AS user_event_id,
    stable_client
FROM parts
ORDER BY session_id;
