-- stg_costs: the day's marketing costs in each site's currency, summed to the grain
-- date x site_id x source x medium x campaign (ad groups, terms and contents add up).
-- A cost row's date is the site's own local date, as its sessions'.
--
-- The same currency rule as events: the site's currency as is, another currency
-- converted row by row through the reporting currency when it and the site's have a
-- rate, any other left out of the sum and counted in unconverted_rows. A group whose
-- rows are all unconverted keeps its row, with cost 0.
--
-- Parameters: $run_date, $currency. Reads: marketing_costs, currency_rates, site_settings.
CREATE OR REPLACE TEMP TABLE stg_costs AS
WITH rated AS (
    SELECT
        c.*,
        coalesce(s.currency, $currency) AS site_currency,
        CASE WHEN s.site_id IS NULL THEN 1.0 ELSE s.rate END AS site_rate,
        CASE WHEN c.currency = $currency THEN 1.0 ELSE r.rate END AS cost_rate
    FROM marketing_costs AS c
    LEFT JOIN site_settings AS s USING (site_id)
    LEFT JOIN currency_rates AS r ON r.currency = c.currency
    WHERE c.date = $run_date::DATE
),

converted AS (
    SELECT
        *,
        CASE
            WHEN currency = site_currency THEN cost
            WHEN cost_rate IS NOT NULL AND site_rate IS NOT NULL
                THEN CAST(cost * cost_rate / site_rate AS DECIMAL(18, 4))
        END AS cost_site
    FROM rated
)

SELECT
    date,
    site_id,
    source,
    medium,
    campaign,
    site_currency AS currency,
    CAST(coalesce(sum(cost_site), 0) AS DECIMAL(18, 4)) AS cost,
    count(*) FILTER (WHERE cost_site IS NULL) AS unconverted_rows
FROM converted
GROUP BY date, site_id, source, medium, campaign, site_currency
ORDER BY ALL;
