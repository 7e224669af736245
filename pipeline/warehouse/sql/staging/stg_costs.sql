-- stg_costs: the day's marketing costs in the reporting currency, summed to the grain
-- date x site_id x source x medium x campaign (ad groups, terms and contents add up).
--
-- The same currency rule as events: the reporting currency as is, a currency with a rate
-- converted row by row, any other currency left out of the sum and counted in
-- unconverted_rows. A group whose rows are all unconverted keeps its row, with cost 0.
--
-- Parameters: $run_date, $currency. Reads: marketing_costs, currency_rates.
CREATE OR REPLACE TEMP TABLE stg_costs AS
SELECT
    c.date,
    c.site_id,
    c.source,
    c.medium,
    c.campaign,
    CAST(coalesce(sum(
        CASE
            WHEN c.currency = $currency THEN c.cost
            WHEN r.rate IS NOT NULL THEN CAST(c.cost * r.rate AS DECIMAL(18, 4))
        END
    ), 0) AS DECIMAL(18, 4)) AS cost,
    count(*) FILTER (WHERE c.currency <> $currency AND r.rate IS NULL) AS unconverted_rows
FROM marketing_costs AS c
LEFT JOIN currency_rates AS r ON r.currency = c.currency
WHERE c.date = $run_date::DATE
GROUP BY c.date, c.site_id, c.source, c.medium, c.campaign
ORDER BY ALL;
