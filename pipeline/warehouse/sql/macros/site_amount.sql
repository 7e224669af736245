-- site_amount(value, currency, site_currency, factor): an amount in its site's currency.
-- The site's currency, or none given: as is. Another currency: times `factor`, what one
-- unit of it is worth in the site's (stg_site_currencies). Without a factor (a currency,
-- or a site's currency, without a rate): NULL, so it stays out of every sum, and flagged;
-- so is an amount beyond DECIMAL(18, 4) (validation bounds values by max_event_value, but
-- a rate may have grown since), rather than failing the day's build.
CREATE OR REPLACE TEMP MACRO site_amount(value, currency, site_currency, factor) AS
    CASE
        WHEN value IS NULL THEN NULL
        WHEN currency IS NULL OR currency = site_currency
            THEN TRY_CAST(value AS DECIMAL(18, 4))
        ELSE TRY_CAST(value * factor AS DECIMAL(18, 4))
    END;
