-- grain: one row per date x site_id x source x medium x campaign
-- reads: marketing_costs, site_settings, stg_site_currencies
-- unique: date, site_id, source, medium, campaign
-- not_null: date, site_id, source, medium
-- stg_costs: the day's marketing costs in each site's currency, summed to the grain
-- date x site_id x source x medium x campaign (ad groups, terms and contents add up).
-- A cost row's date is the site's own local date, as its sessions'.
--
-- The same currency rule as events: the site's currency as is, another currency
-- converted row by row (stg_site_currencies), one without a factor left out of the sum
-- and counted in unconverted_rows. A group whose rows are all unconverted keeps its row,
-- with cost 0.
--
-- Parameters: $run_date, $currency.
CREATE OR REPLACE TEMP TABLE stg_costs AS
WITH converted AS (
    SELECT
        c.*,
        coalesce(s.currency, $currency) AS site_currency,
        CASE
            WHEN c.currency = coalesce(s.currency, $currency) THEN c.cost
            ELSE CAST(c.cost * f.factor AS DECIMAL(18, 4))
        END AS cost_site
    FROM marketing_costs AS c
    LEFT JOIN site_settings AS s USING (site_id)
    LEFT JOIN stg_site_currencies AS f ON f.site_id = c.site_id AND f.currency = c.currency
    WHERE c.date = $run_date::DATE
)

SELECT
    date, site_id, source, medium, campaign, site_currency AS currency,
    CAST(coalesce(sum(cost_site), 0) AS DECIMAL(18, 4)) AS cost,
    count(*) FILTER (WHERE cost_site IS NULL) AS unconverted_rows
FROM converted
GROUP BY date, site_id, source, medium, campaign, site_currency
ORDER BY ALL;
