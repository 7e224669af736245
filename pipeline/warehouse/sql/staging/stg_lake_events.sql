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
    -- keep its first landing. File and row break ties, so the same lake always gives the
    -- same rows.
    SELECT * EXCLUDE (event_date, filename, file_row_number)
    FROM lake
    QUALIFY row_number() OVER (
        PARTITION BY site_id, event_id ORDER BY ingested_at, filename, file_row_number
    ) = 1
)

SELECT
    e.*,
    -- Engagement signals (GA4's user_engagement, Plausible's engagement) only add
    -- engagement time: they are not events, page views, entry or exit pages, and neither
    -- start nor stretch a session.
    e.event_name IN ('user_engagement', 'engagement') AS is_engagement_signal,
    -- Same currency, or none given: as is. A currency with a rate: converted. Any other
    -- currency: NULL here, so it stays out of every sum, and flagged.
    CASE
        WHEN e.value IS NULL THEN NULL
        WHEN e.currency IS NULL OR e.currency = $currency
            THEN CAST(e.value AS DECIMAL(18, 4))
        WHEN r.rate IS NOT NULL THEN CAST(e.value * r.rate AS DECIMAL(18, 4))
    END AS value_reporting,
    coalesce(
        e.value IS NOT NULL AND e.currency <> $currency AND r.rate IS NULL, false
    ) AS unconverted
FROM unique_events AS e
LEFT JOIN currency_rates AS r ON r.currency = e.currency;
