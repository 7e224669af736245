-- grain: one row per event of the sessions dated $run_date (site_id, event_date, event_id)
-- reads: lake, stg_day_sessions, site_settings, stg_site_currencies
-- unique: site_id, event_date, event_id
-- not_null: event_id, session_id, site_id, event_ts, session_date
--
-- stg_events: every event of the day's sessions (stg_day_sessions), each once
-- (lake_events), with its site's time zone and currency and its amount in the site's
-- currency. $lake_files are the files of the partitions those sessions have events on
-- (the day itself, the tails of sessions open across its edges): nothing else of the lake
-- is read.
--
-- - A session counts on the local date of its first event in its site's time zone
--   (stg_day_sessions), wherever its later events fall, up to $max_session_days after
--   that first event: later events are beyond_cut (as dbt-snowplow-web's
--   max_session_days cuts them), left out of the session (session_facts.sql) and
--   counted by build_stats;
-- - is_first_event marks the session's first event (stg_day_sessions' first_ts and
--   first_event_id, from the lake summaries: the first by event_ts, then event_id).
--
-- Parameters: $run_date, $max_session_days, $lake_files (parquet paths), $timezone and
-- $currency (the global ones, for a site no longer in `sites`).
CREATE OR REPLACE TEMP TABLE stg_events AS
WITH day_events AS (
    -- The columns the day's models use (the rest of the row stays in the lake).
    SELECT
        l.event_date, l.site_id, l.event_id, l.session_id, l.visitor_id, l.user_id,
        l.event_ts, l.event_name, l.page_url, l.source, l.medium, l.campaign,
        l.channel_group, l.device_category, l.country, l.value, l.currency,
        l.transaction_id, l.engagement_time_ms, l.is_anonymous, l.is_engagement_signal,
        l.event_ts > d.first_ts + to_days(CAST($max_session_days AS INTEGER)) AS beyond_cut,
        NOT l.is_engagement_signal AND l.event_ts = d.first_ts AND l.event_id = d.first_event_id
            AS is_first_event
    FROM lake_events($lake_files::VARCHAR[]) AS l
    INNER JOIN stg_day_sessions AS d USING (session_id)
),

sited AS (
    -- A site no longer in `sites` keeps the global zone and currency.
    SELECT
        e.*,
        coalesce(s.timezone, $timezone) AS site_timezone,
        coalesce(s.currency, $currency) AS site_currency
    FROM day_events AS e
    LEFT JOIN site_settings AS s USING (site_id)
),

converted AS (
    SELECT
        e.*,
        site_amount(e.value, e.currency, e.site_currency, f.factor) AS value_site,
        -- Units of the site's currency per unit of the reporting one, for goal values.
        CASE WHEN e.site_currency = $currency THEN 1.0 ELSE g.factor END AS goal_factor
    FROM sited AS e
    LEFT JOIN stg_site_currencies AS f ON f.site_id = e.site_id AND f.currency = e.currency
    LEFT JOIN stg_site_currencies AS g ON g.site_id = e.site_id AND g.currency = $currency
)

SELECT
    *,
    $run_date::DATE AS session_date,
    value IS NOT NULL AND value_site IS NULL AS unconverted
FROM converted;
