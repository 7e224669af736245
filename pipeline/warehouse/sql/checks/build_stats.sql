-- What a build reports besides row counts: amounts kept out of the sums because their
-- currency has no rate; sessions that lost events to the $max_session_days cut, seen
-- from this day: those dated this day, and earlier ones with events on this day (the
-- window reaches a day past the cut after, and the look-back before, so a tail is seen
-- from one side or the other unless it comes later than both); refunds without a value
-- whose purchase is not in the window (they return nothing).
WITH window_sessions AS (
    SELECT
        session_id,
        site_timezone,
        event_ts,
        min(event_ts) FILTER (WHERE NOT is_engagement_signal)
            OVER (PARTITION BY session_id) AS first_ts
    FROM stg_lake_events
)

SELECT
    (SELECT count(*) FROM stg_events WHERE unconverted) AS unconverted_values,
    (SELECT coalesce(sum(unconverted_rows), 0) FROM stg_costs) AS unconverted_costs,
    (
        SELECT count(DISTINCT session_id)
        FROM window_sessions
        WHERE event_ts > first_ts + to_days(CAST($max_session_days AS INTEGER))
            AND (
                CAST(timezone(site_timezone, first_ts) AS DATE) = $run_date::DATE
                OR CAST(timezone(site_timezone, event_ts) AS DATE) = $run_date::DATE
            )
    ) AS cut_sessions,
    (
        SELECT count(*)
        FROM stg_events AS e
        LEFT JOIN stg_transactions AS t USING (site_id, transaction_id)
        WHERE e.event_name = 'refund' AND e.value IS NULL AND t.counted_event_id IS NULL
    ) AS unmatched_refunds;
