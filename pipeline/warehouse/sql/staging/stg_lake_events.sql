-- grain: one row per event of the sessions dated $run_date (site_id, event_date, event_id)
-- reads: lake, stg_day_sessions, site_settings, stg_site_currencies
-- unique: site_id, event_date, event_id
-- not_null: event_id, session_id, site_id, event_ts
--
-- stg_lake_events: every event of the day's sessions (stg_day_sessions), each once
-- (lake_events), with its site's time zone and currency and its amount in the site's
-- currency. $lake_files are the files of the partitions those sessions have events on
-- (the day itself, the tails of sessions open across its edges): nothing else of the lake
-- is read.
--
-- Parameters: $lake_files (parquet paths), $timezone and $currency (the global ones, for
-- a site no longer in `sites`).
CREATE OR REPLACE TEMP TABLE stg_lake_events AS
WITH day_events AS (
    -- The columns the day's models use (the rest of the row stays in the lake).
    SELECT
        event_date, site_id, event_id, session_id, visitor_id, user_id, event_ts,
        event_name, page_url, source, medium, campaign, channel_group, device_category,
        country, value, currency, transaction_id, engagement_time_ms, is_anonymous,
        is_engagement_signal
    FROM lake_events($lake_files::VARCHAR[])
    WHERE session_id IN (SELECT session_id FROM stg_day_sessions)
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

SELECT *, value IS NOT NULL AND value_site IS NULL AS unconverted
FROM converted;
