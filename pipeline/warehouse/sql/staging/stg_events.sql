-- grain: one row per event of the sessions dated $run_date, up to the cut (site_id, event_date, event_id)
-- reads: stg_lake_events, stg_day_sessions
-- unique: site_id, event_date, event_id
-- not_null: event_id, session_id, session_date
--
-- stg_events: the events of the sessions dated $run_date. A session counts on the local
-- date of its first event in its site's time zone (stg_day_sessions), wherever its later
-- events fall, up to $max_session_days after that first event: later events are cut (as
-- dbt-snowplow-web's max_session_days does); build_stats counts the sessions cut.
-- is_first_event marks the session's first event (stg_day_sessions' first_ts and
-- first_event_id, from the lake summaries: the first by event_ts, then event_id).
--
-- Parameters: $run_date, $max_session_days.
CREATE OR REPLACE TEMP TABLE stg_events AS
SELECT
    e.*,
    $run_date::DATE AS session_date,
    NOT e.is_engagement_signal AND e.event_ts = d.first_ts AND e.event_id = d.first_event_id
        AS is_first_event
FROM stg_lake_events AS e
INNER JOIN stg_day_sessions AS d USING (session_id)
WHERE e.event_ts <= d.first_ts + to_days(CAST($max_session_days AS INTEGER));
