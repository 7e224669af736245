-- What a build reports besides row counts: amounts kept out of the sums because their
-- currency has no rate; sessions that lost events to the $max_session_days cut, seen
-- from this day: those dated this day (the build reads a day past the cut), and earlier
-- ones with events on this day's partition past it (through the lake summaries), so a
-- tail is seen from one side or the other;
-- refunds without a value whose purchase is not in the window (they return nothing).
WITH tails AS (
    -- The parts on this day's partition of sessions not dated this day.
    SELECT session_id, last_ts
    FROM lake_partition_sessions
    WHERE event_date = $run_date::DATE
        AND session_id NOT IN (SELECT session_id FROM stg_day_sessions)
),

window_starts AS (
    SELECT p.session_id, min(p.first_ts) AS first_ts
    FROM lake_partition_sessions AS p
    SEMI JOIN tails AS t USING (session_id)
    WHERE p.event_date BETWEEN $window_start::DATE AND $window_end::DATE
    GROUP BY p.session_id
),

earlier_tails_cut AS (
    SELECT t.session_id
    FROM tails AS t
    INNER JOIN window_starts AS w USING (session_id)
    WHERE t.last_ts > w.first_ts + to_days(CAST($max_session_days AS INTEGER))
)

SELECT
    (SELECT count(*) FROM stg_events WHERE unconverted AND NOT beyond_cut) AS unconverted_values,
    (SELECT coalesce(sum(unconverted_rows), 0) FROM stg_costs) AS unconverted_costs,
    (SELECT count(DISTINCT session_id) FROM stg_events WHERE beyond_cut)
        + (SELECT count(*) FROM earlier_tails_cut) AS cut_sessions,
    (
        SELECT count(*)
        FROM stg_events AS e
        LEFT JOIN stg_transactions AS t USING (site_id, transaction_id)
        WHERE e.event_name = 'refund' AND e.value IS NULL AND t.counted_event_id IS NULL
            AND NOT e.beyond_cut
    ) AS unmatched_refunds;
