-- lake_events(files): the lake's events in `files` (parquet paths), each once (grain:
-- event). An event id is unique per site and event date: a replayed or re-imported event
-- is the same event, so its first landing is kept; but an authenticated event wins over
-- an anonymous one with its id, whichever came first (trust: a missing value, in files
-- written before it existed, is authenticated). File and row break ties, so the same lake
-- always gives the same rows. Every reader of the lake's events (the partition summaries
-- and the day's own events) takes them from here, so all agree on which copy counts.
--
-- Only the ids that repeat are ranked: the keys are grouped first (three narrow columns),
-- and the events of the other ids pass as they are, so the usual lake, without copies,
-- costs one grouping of its keys rather than a sort of its whole rows.
--
-- Engagement signals (GA4's user_engagement, Plausible's engagement) only add engagement
-- time: they are not events, page views, entry or exit pages, and neither start nor
-- stretch a session.
CREATE OR REPLACE TEMP MACRO lake_events(files) AS TABLE
WITH repeated AS (
    SELECT site_id, event_date, event_id
    FROM read_parquet(
        files, hive_partitioning = true, hive_types = {'event_date': DATE}, union_by_name = true
    )
    GROUP BY ALL
    HAVING count(*) > 1
),

landed AS NOT MATERIALIZED (
    SELECT
        *,
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
)

SELECT * EXCLUDE (filename, file_row_number)
FROM landed
ANTI JOIN repeated USING (site_id, event_date, event_id)
UNION ALL
SELECT * EXCLUDE (filename, file_row_number)
FROM landed
SEMI JOIN repeated USING (site_id, event_date, event_id)
QUALIFY row_number() OVER (
    PARTITION BY site_id, event_date, event_id
    ORDER BY is_anonymous, ingested_at, filename, file_row_number
) = 1;
