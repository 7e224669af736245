-- grain: one row per non-direct session of the look-back that a session of the day may take its source from (site_id, attribution_user, session_start)
-- reads: lake_partition_sessions, stg_day_users
-- unique: site_id, attribution_user, session_start
-- not_null: site_id, attribution_user, session_start
--
-- stg_touches: the non-direct sessions of the attribution look-back which a later direct
-- session of the same user may take its source from (GA4's default reporting credits a
-- direct session to the visitor's last non-direct source, as dbt-ga4 does). A session's
-- source is that of its first event; the user is the session's user_id when it sent one,
-- else its visitor id, so for cookie-free visitors, whose ids live one day, only the same
-- day's sessions can be touches.
--
-- Read from the lake summaries (the parts of sessions on each partition of the look-back,
-- combined), and only the sessions of users the day's sessions have (stg_day_users): the
-- others cannot be anyone's touch today.
--
-- Parameters: $touch_start, $touch_end (BuildWindow.touches; a start after the end when
-- direct sessions are kept).
CREATE OR REPLACE TEMP TABLE stg_touches AS
WITH look_back AS (
    SELECT *
    FROM lake_partition_sessions
    WHERE event_date BETWEEN $touch_start::DATE AND $touch_end::DATE
),

candidates AS (
    SELECT l.session_id
    FROM look_back AS l
    SEMI JOIN stg_day_users AS u ON u.site_id = l.site_id AND u.attribution_user = l.visitor_id
    UNION
    SELECT l.session_id
    FROM look_back AS l
    SEMI JOIN stg_day_users AS u ON u.site_id = l.site_id AND u.attribution_user = l.user_id
),

sessions AS (
    SELECT
        l.session_id,
        any_value(l.site_id) AS site_id,
        coalesce(
            arg_min(l.user_id, (l.user_ts, l.user_event_id)) FILTER (WHERE l.user_id IS NOT NULL),
            min(l.visitor_id)
        ) AS attribution_user,
        min(l.first_ts) AS session_start,
        arg_min(
            {'source': l.source, 'medium': l.medium, 'campaign': l.campaign,
             'channel_group': l.channel_group},
            (l.first_ts, l.first_event_id)
        ) FILTER (WHERE l.first_ts IS NOT NULL) AS first_touch
    FROM look_back AS l
    SEMI JOIN candidates AS c ON c.session_id = l.session_id
    GROUP BY l.session_id
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
-- One touch per user and start, the same one every run (session_facts.sql joins on the start).
QUALIFY row_number() OVER (
    PARTITION BY site_id, attribution_user, session_start ORDER BY session_id
) = 1
ORDER BY ALL;
