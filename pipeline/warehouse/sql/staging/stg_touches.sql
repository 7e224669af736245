-- grain: one row per non-direct session that may be the last non-direct touch of a session dated $run_date (site_id, attribution_user, session_start)
-- reads: lake_session_touches, stg_day_users
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
-- Read from the lake summaries' whole sessions (lake_session_touches) that start on the
-- partitions of the look-back, and only those of users the day's sessions have
-- (stg_day_users): the others cannot be anyone's touch today. Of a user's touches that
-- start before $touch_cut (no session dated $run_date starts earlier), only the latest
-- can be the last non-direct touch of a session of the day: the others are left out, so
-- a user who comes back every day brings two touches, not thirty. (`touches` is read
-- again by each use: cheaper here than materialising it.)
--
-- Parameters: $touch_start, $touch_end (BuildWindow.touches, partition dates in the
-- global $timezone; a start after the end when direct sessions are kept), $touch_cut
-- (BuildWindow.earliest_start).
CREATE OR REPLACE TEMP TABLE stg_touches AS
WITH touches AS NOT MATERIALIZED (
    SELECT t.session_id, t.site_id, t.attribution_user, t.session_start, t.source, t.medium,
        t.campaign, t.channel_group
    FROM lake_session_touches AS t
    SEMI JOIN stg_day_users AS u
        ON u.site_id = t.site_id AND u.attribution_user = t.attribution_user
    WHERE t.session_start >= timezone($timezone, CAST($touch_start::DATE AS TIMESTAMP))
        AND t.session_start < timezone($timezone, CAST($touch_end::DATE + 1 AS TIMESTAMP))
),

latest_start_before_cut AS (
    SELECT site_id, attribution_user, max(session_start) AS session_start
    FROM touches
    WHERE session_start < $touch_cut::TIMESTAMPTZ
    GROUP BY site_id, attribution_user
),

latest_before_cut AS (
    -- One touch per user: the latest start, then (as below) the lowest session id.
    SELECT t.site_id, t.attribution_user, t.session_start, t.source, t.medium, t.campaign,
        t.channel_group
    FROM touches AS t
    SEMI JOIN latest_start_before_cut AS l
        ON l.site_id = t.site_id
        AND l.attribution_user = t.attribution_user
        AND l.session_start = t.session_start
    QUALIFY row_number() OVER (
        PARTITION BY t.site_id, t.attribution_user ORDER BY t.session_id
    ) = 1
),

since_cut AS (
    SELECT site_id, attribution_user, session_start, source, medium, campaign, channel_group
    FROM touches
    WHERE session_start >= $touch_cut::TIMESTAMPTZ
    -- One touch per user and start, the same one every run (session_facts.sql joins on
    -- the start).
    QUALIFY row_number() OVER (
        PARTITION BY site_id, attribution_user, session_start ORDER BY session_id
    ) = 1
)

SELECT *
FROM latest_before_cut
UNION ALL
SELECT *
FROM since_cut;
