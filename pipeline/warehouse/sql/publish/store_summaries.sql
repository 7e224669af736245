-- Replace partition $event_date's rows of the lake summaries with summary_sessions',
-- summary_transactions' and summary_refunds', and record the fingerprint of the files
-- they were made from ($files). Run inside one transaction.

-- The sessions with a part on the partition, before this summary or after it: their
-- rows of lake_session_touches are combined again below.
CREATE OR REPLACE TEMP TABLE summary_touched_sessions AS
SELECT session_id FROM lake_partition_sessions WHERE event_date = $event_date::DATE
UNION
SELECT session_id FROM summary_sessions;

DELETE FROM lake_partition_sessions WHERE event_date = $event_date::DATE;
INSERT INTO lake_partition_sessions BY NAME SELECT * FROM summary_sessions;
DELETE FROM lake_partition_transactions WHERE event_date = $event_date::DATE;
INSERT INTO lake_partition_transactions BY NAME SELECT * FROM summary_transactions;
DELETE FROM lake_partition_refunds WHERE event_date = $event_date::DATE;
INSERT INTO lake_partition_refunds BY NAME SELECT * FROM summary_refunds;

-- A session's start and source are its first event's (of its first part, by event_ts,
-- then event_id), its user its first user_id (else its visitor id), over all its parts.
DELETE FROM lake_session_touches
WHERE session_id IN (SELECT session_id FROM summary_touched_sessions);
INSERT INTO lake_session_touches BY NAME
WITH sessions AS (
    SELECT
        p.session_id,
        any_value(p.site_id) AS site_id,
        coalesce(
            arg_min(p.user_id, (p.user_ts, p.user_event_id)) FILTER (WHERE p.user_id IS NOT NULL),
            min(p.visitor_id)
        ) AS attribution_user,
        min(p.first_ts) AS session_start,
        arg_min(
            {'source': p.source, 'medium': p.medium, 'campaign': p.campaign,
             'channel_group': p.channel_group},
            (p.first_ts, p.first_event_id)
        ) FILTER (WHERE p.first_ts IS NOT NULL) AS first_touch
    FROM lake_partition_sessions AS p
    SEMI JOIN summary_touched_sessions AS t USING (session_id)
    GROUP BY p.session_id
)

SELECT
    session_id,
    site_id,
    attribution_user,
    session_start,
    first_touch.source AS source,
    first_touch.medium AS medium,
    first_touch.campaign AS campaign,
    first_touch.channel_group AS channel_group
FROM sessions
WHERE first_touch.channel_group <> 'Direct';

INSERT OR REPLACE INTO lake_partitions VALUES ($event_date::DATE, $files);
