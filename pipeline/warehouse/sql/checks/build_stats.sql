-- What a build reports besides row counts: amounts kept out of the sums because their
-- currency has no rate, and sessions cut at flows.max_session_days.
SELECT
    (SELECT count(*) FROM stg_events WHERE unconverted) AS unconverted_values,
    (SELECT coalesce(sum(unconverted_rows), 0) FROM stg_costs) AS unconverted_costs,
    (SELECT count(DISTINCT session_id) FROM stg_session_events WHERE is_cut) AS cut_sessions;
