-- stg_events: the lake's events of the sessions dated $run_date, each event once, with its
-- amount in the reporting currency (grain: event). A session made only of engagement
-- signals is no session: it has no date, so it is left out.
--
-- A session counts on the local date ($timezone) of its first event and may cross
-- midnight, so $lake_files is the build's window of partitions (pipeline/lake/paths.py):
-- the day before shows which sessions had already started yesterday (they are left
-- out), the day after holds the tails of today's sessions.
--
-- Parameters: $lake_files (parquet paths), $run_date, $timezone, $currency.
-- Reads: currency_rates(currency, rate): units of $currency per unit of `currency`.
CREATE OR REPLACE TEMP TABLE stg_events AS
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
    -- A replayed or re-imported event is the same event: keep its first landing. File
    -- and row break ties, so the same lake always gives the same rows.
    SELECT * EXCLUDE (event_date, filename, file_row_number)
    FROM lake
    QUALIFY row_number() OVER (
        PARTITION BY event_id ORDER BY ingested_at, filename, file_row_number
    ) = 1
),

signals AS (
    -- Engagement signals (GA4's user_engagement, Plausible's engagement) only add
    -- engagement time: they are not events, page views, entry or exit pages, and neither
    -- start nor stretch a session.
    SELECT *, event_name IN ('user_engagement', 'engagement') AS is_engagement_signal
    FROM unique_events
),

in_sessions AS (
    SELECT
        *,
        min(event_ts) FILTER (WHERE NOT is_engagement_signal)
            OVER (PARTITION BY session_id) AS session_first_ts,
        NOT is_engagement_signal AND row_number() OVER (
            PARTITION BY session_id, is_engagement_signal ORDER BY event_ts, event_id
        ) = 1 AS is_first_event
    FROM signals
)

SELECT
    e.* EXCLUDE (session_first_ts),
    CAST(timezone($timezone, e.event_ts) AS DATE) AS event_local_date,
    CAST(timezone($timezone, e.session_first_ts) AS DATE) AS session_date,
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
FROM in_sessions AS e
LEFT JOIN currency_rates AS r ON r.currency = e.currency
WHERE CAST(timezone($timezone, e.session_first_ts) AS DATE) = $run_date::DATE
ORDER BY e.session_id, e.event_ts, e.event_id;
