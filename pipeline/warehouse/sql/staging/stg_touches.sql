-- grain: one row per non-direct session of the look-back, per user and start
-- reads: lake
-- unique: site_id, attribution_user, session_start
-- not_null: site_id, session_start
-- stg_touches: the non-direct sessions of the attribution look-back (grain: session),
-- which a later direct session of the same user may take its source from (GA4's
-- default reporting credits a direct session to the visitor's last non-direct source, as
-- dbt-ga4 does). A session's source is that of its first event; the user is the
-- session's user_id when it sent one, else its visitor id, so for cookie-free visitors,
-- whose ids live one day, only the same day's sessions can be touches.
--
-- Parameters: $touch_files (parquet paths: BuildWindow.touches, empty when direct
-- sessions are kept).
CREATE OR REPLACE TEMP TABLE stg_touches AS
WITH lake AS (
    SELECT site_id, visitor_id, user_id, session_id, event_id, event_ts, event_name,
        source, medium, campaign, channel_group
    FROM read_parquet($touch_files::VARCHAR[], union_by_name = true)
    WHERE event_name NOT IN ('user_engagement', 'engagement')
),

sessions AS (
    SELECT
        session_id,
        any_value(site_id) AS site_id,
        coalesce(
            arg_min(user_id, (event_ts, event_id)) FILTER (WHERE user_id IS NOT NULL),
            any_value(visitor_id)
        ) AS attribution_user,
        min(event_ts) AS session_start,
        arg_min(
            {'source': source, 'medium': medium, 'campaign': campaign,
             'channel_group': channel_group},
            (event_ts, event_id)
        ) AS first_touch
    FROM lake
    GROUP BY session_id
)

SELECT
    site_id,
    attribution_user,
    session_start,
    first_touch.source AS source,
    first_touch.medium AS medium,
    first_touch.campaign AS campaign,
    first_touch.channel_group AS channel_group
FROM sessions
WHERE first_touch.channel_group <> 'Direct'
-- One touch per user and start, the same one every run (sessions.sql joins on the start).
QUALIFY row_number() OVER (
    PARTITION BY site_id, attribution_user, session_start ORDER BY session_id
) = 1
ORDER BY ALL;
