-- grain: one row per event of the sessions dated $run_date (site_id, event_id)
-- reads: stg_lake_events
-- unique: site_id, event_id
-- not_null: site_id, event_id, session_id, session_date
-- stg_events: the events of the sessions dated $run_date (grain: event). A session made
-- only of engagement signals is no session: it has no date, so it is left out.
--
-- A session counts on the local date of its first event in its site's time zone
-- (site_timezone, as a GA4 property's or a Plausible site's), wherever its later events
-- fall, up to $max_session_days after that first event: later events are cut (as
-- dbt-snowplow-web's max_session_days does); build_stats counts the sessions cut.
--
-- Parameters: $run_date, $max_session_days.
CREATE OR REPLACE TEMP TABLE stg_events AS
WITH in_sessions AS (
    SELECT
        *,
        min(event_ts) FILTER (WHERE NOT is_engagement_signal)
            OVER (PARTITION BY session_id) AS session_first_ts
    FROM stg_lake_events
),

kept AS (
    SELECT
        * EXCLUDE (session_first_ts),
        CAST(timezone(site_timezone, session_first_ts) AS DATE) AS session_date
    FROM in_sessions
    WHERE CAST(timezone(site_timezone, session_first_ts) AS DATE) = $run_date::DATE
        AND event_ts <= session_first_ts + to_days(CAST($max_session_days AS INTEGER))
)

SELECT
    *,
    NOT is_engagement_signal AND row_number() OVER (
        PARTITION BY session_id, is_engagement_signal ORDER BY event_ts, event_id
    ) = 1 AS is_first_event,
    CAST(timezone(site_timezone, event_ts) AS DATE) AS event_local_date
FROM kept
ORDER BY session_id, event_ts, event_id;
