-- grain: one row per event of the sessions dated $run_date, up to the cut (site_id, event_date, event_id)
-- reads: stg_lake_events, stg_day_sessions
-- unique: site_id, event_date, event_id
-- not_null: event_id, session_id, session_date
--
-- stg_events: the events of the sessions dated $run_date. A session counts on the local
-- date of its first event in its site's time zone (stg_day_sessions), wherever its later
-- events fall, up to $max_session_days after that first event: later events are cut (as
-- dbt-snowplow-web's max_session_days does); build_stats counts the sessions cut.
--
-- Parameters: $max_session_days.
CREATE OR REPLACE TEMP TABLE stg_events AS
WITH kept AS (
    SELECT
        e.*,
        CAST(timezone(e.site_timezone, d.first_ts) AS DATE) AS session_date
    FROM stg_lake_events AS e
    INNER JOIN stg_day_sessions AS d USING (session_id)
    WHERE e.event_ts <= d.first_ts + to_days(CAST($max_session_days AS INTEGER))
)

SELECT
    *,
    NOT is_engagement_signal AND row_number() OVER (
        PARTITION BY session_id, is_engagement_signal ORDER BY event_ts, event_id
    ) = 1 AS is_first_event,
    CAST(timezone(site_timezone, event_ts) AS DATE) AS event_local_date
FROM kept
ORDER BY session_id, event_ts, event_id;
