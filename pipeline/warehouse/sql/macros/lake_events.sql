-- lake_events(files): the lake's events in `files` (parquet paths), each once (grain:
-- event). An event id is unique per site and event date: a replayed or re-imported event
-- is the same event, so its first landing is kept; but an authenticated event wins over
-- an anonymous one with its id, whichever came first (trust: a missing value, in files
-- written before it existed, is authenticated). File and row break ties, so the same lake
-- always gives the same rows. Every reader of the lake's events (the partition summaries
-- and the day's own events) takes them from here, so all agree on which copy counts.
--
-- Engagement signals (GA4's user_engagement, Plausible's engagement) only add engagement
-- time: they are not events, page views, entry or exit pages, and neither start nor
-- stretch a session.
CREATE OR REPLACE TEMP MACRO lake_events(files) AS TABLE
SELECT
    * EXCLUDE (filename, file_row_number),
    coalesce(trust = 'anonymous', false) AS is_anonymous,
    event_name IN ('user_engagement', 'engagement') AS is_engagement_signal
FROM read_parquet(
    files,
    hive_partitioning = true,
    hive_types = {'event_date': DATE},
    union_by_name = true,
    filename = true,
    file_row_number = true
)
QUALIFY row_number() OVER (
    PARTITION BY site_id, event_date, event_id
    ORDER BY coalesce(trust = 'anonymous', false), ingested_at, filename, file_row_number
) = 1;
