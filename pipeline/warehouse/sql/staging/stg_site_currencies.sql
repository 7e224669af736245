-- grain: one row per site and currency (site_id, currency)
-- reads: site_settings, currency_rates
-- unique: site_id, currency
-- not_null: site_id, currency
-- stg_site_currencies: what one unit of `currency` is worth in a site's own currency
-- (grain: site_id x currency), for every site of `sites` and every currency with a rate:
-- factor = rate(currency) / rate(site's currency), through the reporting currency
-- ($currency, rate 1). NULL when the site's currency has no rate; the site's own
-- currency is always 1. stg_events and stg_costs convert amounts with it, and the
-- goals' values (in the reporting currency) take the factor of $currency.
--
-- Parameters: $currency. site_settings has (site_id, timezone, currency, rate),
-- currency_rates (currency, rate).
CREATE OR REPLACE TEMP TABLE stg_site_currencies AS
WITH rates AS (
    SELECT currency, rate FROM currency_rates WHERE currency <> $currency
    UNION ALL
    SELECT $currency, 1.0
)

SELECT
    s.site_id,
    r.currency,
    CASE WHEN r.currency = s.currency THEN 1.0 ELSE r.rate / s.rate END AS factor
FROM site_settings AS s
CROSS JOIN rates AS r
UNION ALL
-- The site's own currency when [currency_rates] has no rate for it.
SELECT site_id, currency, 1.0
FROM site_settings
WHERE rate IS NULL
ORDER BY ALL;
