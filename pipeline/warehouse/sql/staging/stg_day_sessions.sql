-- grain: one row per session dated $run_date (session_id)
-- reads: lake_partition_sessions, site_settings
-- unique: session_id
-- not_null: session_id, site_id, first_ts
--
-- stg_day_sessions: the sessions that count on $run_date, found through the lake
-- summaries, not by reading whole days: a session counts on the local date of its first
-- event in its site's time zone (site_timezone, as a GA4 property's or a Plausible
-- site's), and its parts on the partitions of the build's window combine into it. A
-- session made only of engagement signals has no first event: no date, no session.
--
-- Parameters: $run_date, $window_start and $window_end (BuildWindow.events), $timezone
-- (for a site no longer in `sites`).
CREATE OR REPLACE TEMP TABLE stg_day_sessions AS
WITH window_sessions AS (
    SELECT session_id, any_value(site_id) AS site_id, min(first_ts) AS first_ts
    FROM lake_partition_sessions
    WHERE event_date BETWEEN $window_start::DATE AND $window_end::DATE
    GROUP BY session_id
)

SELECT w.session_id, w.site_id, w.first_ts
FROM window_sessions AS w
LEFT JOIN site_settings AS s USING (site_id)
WHERE CAST(timezone(coalesce(s.timezone, $timezone), w.first_ts) AS DATE) = $run_date::DATE
ORDER BY w.session_id;
