-- grain: one row per event of the build's window (site_id, event_id)
-- reads: lake, site_settings, stg_site_currencies
-- unique: site_id, event_id
-- not_null: site_id, event_id, session_id, event_ts
-- stg_lake_events: every event of the build's window (grain: event), each once, with its
-- site's time zone and currency and its amount in the site's currency. The window
-- (pipeline/lake/paths.py BuildWindow.events) reaches $max_session_days after $run_date,
-- for the tails of the day's sessions, and the daily look-back plus that many days
-- before, to see which sessions had already started and which transactions were already
-- counted (and two more days each side when sites keep other zones than the lake's).
--
-- Parameters: $lake_files (parquet paths), $timezone and $currency (the global ones, for
-- a site no longer in `sites`). site_settings has (site_id, timezone, currency).
CREATE OR REPLACE TEMP TABLE stg_lake_events AS
WITH lake AS (
    SELECT *
    FROM read_parquet(
        $lake_files::VARCHAR[],
        hive_partitioning = true,
        hive_types = {'event_date': DATE},
        union_by_name = true,
        filename = true,
        file_row_number = true
    )
),

unique_events AS (
    -- An event id is unique per site. A replayed or re-imported event is the same event:
    -- keep its first landing; but an authenticated event wins over an anonymous one with
    -- its id, whichever came first (trust: a missing value, in files written before it
    -- existed, is authenticated). File and row break ties, so the same lake always gives
    -- the same rows.
    SELECT
        * EXCLUDE (event_date, filename, file_row_number),
        coalesce(trust = 'anonymous', false) AS is_anonymous
    FROM lake
    QUALIFY row_number() OVER (
        PARTITION BY site_id, event_id
        ORDER BY is_anonymous, ingested_at, filename, file_row_number
    ) = 1
),

sited AS (
    -- A site no longer in `sites` keeps the global zone and currency.
    SELECT
        e.*,
        coalesce(s.timezone, $timezone) AS site_timezone,
        coalesce(s.currency, $currency) AS site_currency
    FROM unique_events AS e
    LEFT JOIN site_settings AS s USING (site_id)
),

converted AS (
    -- The site's currency, or none given: as is. Another currency: converted into the
    -- site's (stg_site_currencies). Without a factor (a currency or a site's currency
    -- without a rate): NULL here, so it stays out of every sum, and flagged; so is an
    -- amount beyond DECIMAL(18, 4) (validation bounds values by max_event_value, but a
    -- rate may have grown since), rather than failing the day's build.
    SELECT
        e.*,
        CASE
            WHEN e.value IS NULL THEN NULL
            WHEN e.currency IS NULL OR e.currency = e.site_currency
                THEN TRY_CAST(e.value AS DECIMAL(18, 4))
            ELSE TRY_CAST(e.value * f.factor AS DECIMAL(18, 4))
        END AS value_site,
        -- Units of the site's currency per unit of the reporting one, for goal values.
        CASE WHEN e.site_currency = $currency THEN 1.0 ELSE g.factor END AS goal_factor
    FROM sited AS e
    LEFT JOIN stg_site_currencies AS f ON f.site_id = e.site_id AND f.currency = e.currency
    LEFT JOIN stg_site_currencies AS g ON g.site_id = e.site_id AND g.currency = $currency
)

SELECT
    c.*,
    -- Engagement signals (GA4's user_engagement, Plausible's engagement) only add
    -- engagement time: they are not events, page views, entry or exit pages, and neither
    -- start nor stretch a session.
    c.event_name IN ('user_engagement', 'engagement') AS is_engagement_signal,
    c.value IS NOT NULL AND c.value_site IS NULL AS unconverted
FROM converted AS c;
