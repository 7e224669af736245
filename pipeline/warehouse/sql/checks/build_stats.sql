-- What a build reports besides row counts: amounts kept out of the sums because their
-- currency has no rate.
SELECT
    (SELECT count(*) FROM stg_events WHERE unconverted) AS unconverted_values,
    (SELECT coalesce(sum(unconverted_rows), 0) FROM stg_costs) AS unconverted_costs;
