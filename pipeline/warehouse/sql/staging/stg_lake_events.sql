-- stg_lake_events: every event of the build's window (grain: event), each once, with its
-- amount in the reporting currency. The window (pipeline/lake/paths.py BuildWindow.events)
-- reaches $max_session_days after $run_date, for the tails of the day's sessions, and
-- the daily look-back plus that many days before, to see which sessions had already
-- started and which transactions were already counted.
--
-- Parameters: $lake_files (parquet paths), $currency. Reads: currency_rates(currency,
-- rate): units of $currency per unit of `currency`.
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

converted AS (
    -- Same currency, or none given: as is. A currency with a rate: converted. Any other
    -- currency: NULL here, so it stays out of every sum, and flagged; so is an amount
    -- beyond DECIMAL(18, 4) (validation bounds values by max_event_value, but a rate
    -- may have grown since), rather than failing the day's build.
    SELECT
        e.*,
        CASE
            WHEN e.value IS NULL THEN NULL
            WHEN e.currency IS NULL OR e.currency = $currency
                THEN TRY_CAST(e.value AS DECIMAL(18, 4))
            WHEN r.rate IS NOT NULL THEN TRY_CAST(e.value * r.rate AS DECIMAL(18, 4))
        END AS value_reporting
    FROM unique_events AS e
    LEFT JOIN currency_rates AS r ON r.currency = e.currency
)

SELECT
    c.*,
    -- Engagement signals (GA4's user_engagement, Plausible's engagement) only add
    -- engagement time: they are not events, page views, entry or exit pages, and neither
    -- start nor stretch a session.
    c.event_name IN ('user_engagement', 'engagement') AS is_engagement_signal,
    c.value IS NOT NULL AND c.value_reporting IS NULL AS unconverted
FROM converted AS c;
