-- grain: one row per session dated $run_date (session_id)
-- reads: lake_partition_sessions, site_settings
-- unique: session_id
-- not_null: session_id, site_id, first_ts, first_event_id
--
-- stg_day_sessions: the sessions that count on $run_date, found through the lake
-- summaries, not by reading whole days: a session counts on the local date of its first
-- event in its site's time zone (site_timezone, as a GA4 property's or a Plausible
-- site's), and its parts on the partitions of the build's window combine into it. A
-- session made only of engagement signals has no first event: no date, no session.
--
-- Only the parts whose first event falls within the day in some zone are grouped (a
-- session's part on another partition never shares its first event's timestamp); a
-- session with an earlier first event elsewhere in the window is not the day's.
--
-- Parameters: $run_date, $window_start and $window_end (BuildWindow.events), $timezone
-- (for a site no longer in `sites`).
CREATE OR REPLACE TEMP TABLE stg_day_sessions AS
WITH zones AS (
    SELECT timezone AS zone FROM site_settings
    UNION
    SELECT $timezone
),

day_bounds AS (
    -- The day in any zone: from its first midnight to its last.
    SELECT
        min(timezone(zone, CAST($run_date::DATE AS TIMESTAMP))) AS day_start,
        max(timezone(zone, CAST($run_date::DATE + 1 AS TIMESTAMP))) AS day_end
    FROM zones
),

window_parts AS NOT MATERIALIZED (
    SELECT session_id, site_id, first_ts, first_event_id
    FROM lake_partition_sessions
    WHERE event_date BETWEEN $window_start::DATE AND $window_end::DATE
        AND first_ts IS NOT NULL
),

day_parts AS (
    SELECT
        p.session_id,
        any_value(p.site_id) AS site_id,
        min(p.first_ts) AS first_ts,
        arg_min(p.first_event_id, (p.first_ts, p.first_event_id)) AS first_event_id
    FROM window_parts AS p, day_bounds AS b
    WHERE p.first_ts >= b.day_start AND p.first_ts < b.day_end
    GROUP BY p.session_id
),

started_earlier AS (
    SELECT p.session_id
    FROM window_parts AS p, day_bounds AS b
    WHERE p.first_ts < b.day_start
)

SELECT d.session_id, d.site_id, d.first_ts, d.first_event_id
FROM day_parts AS d
LEFT JOIN site_settings AS s USING (site_id)
WHERE d.session_id NOT IN (SELECT session_id FROM started_earlier)
    -- One zone for all: the day's bounds are the day's own.
    AND CASE
        WHEN (SELECT count(*) FROM zones) = 1 THEN true
        ELSE CAST(timezone(coalesce(s.timezone, $timezone), d.first_ts) AS DATE) = $run_date::DATE
    END;
