-- grain: one row per date x site_id x source x medium x campaign
-- reads: session_totals, stg_costs
-- unique: date, site_id, source, medium, campaign
-- not_null: date, site_id, source, medium
-- daily_cost_per_session_this_run: cost against sessions at the grain
-- date x site_id x source x medium x campaign; cost, revenue and conversion value in the
-- site's currency (`currency`).
--
-- A FULL OUTER JOIN: cost with no sessions is a row (sessions 0), and so are sessions
-- with no cost (cost 0). Both sides carry source, medium and campaign trimmed and in lower
-- case, a missing campaign as "(not set)" (pipeline/sessions/attribution.py, applied at
-- ingestion and at cost loading), so they match exactly: a gclid-only google / cpc session
-- meets its "(not set)" cost row. Campaigns still match NULL-safely for cost rows loaded
-- before that rule.
CREATE OR REPLACE TEMP TABLE daily_cost_per_session_this_run AS
WITH campaign_totals AS (
    SELECT
        date,
        site_id,
        source,
        medium,
        campaign,
        currency,
        sum(sessions) AS sessions,
        sum(conversions) AS conversions,
        sum(revenue) AS revenue,
        sum(conversion_value) AS conversion_value
    FROM session_totals
    GROUP BY ALL
),

joined AS (
    SELECT
        coalesce(s.date, c.date) AS date,
        coalesce(s.site_id, c.site_id) AS site_id,
        coalesce(s.source, c.source) AS source,
        coalesce(s.medium, c.medium) AS medium,
        -- Not coalesce: a matched NULL campaign must stay NULL on both sides.
        CASE WHEN s.date IS NULL THEN c.campaign ELSE s.campaign END AS campaign,
        coalesce(s.currency, c.currency) AS currency,
        coalesce(c.cost, 0) AS cost,
        coalesce(s.sessions, 0) AS sessions,
        coalesce(s.conversions, 0) AS conversions,
        coalesce(s.revenue, 0) AS revenue,
        coalesce(s.conversion_value, 0) AS conversion_value
    FROM campaign_totals AS s
    FULL OUTER JOIN stg_costs AS c
        ON s.date = c.date
        AND s.site_id = c.site_id
        AND s.source = c.source
        AND s.medium = c.medium
        AND s.campaign IS NOT DISTINCT FROM c.campaign
)

SELECT
    date,
    site_id,
    source,
    medium,
    campaign,
    CAST(cost AS DECIMAL(18, 4)) AS cost,
    CAST(sessions AS BIGINT) AS sessions,
    cost_per_session(cost, sessions) AS cost_per_session,
    CAST(revenue AS DECIMAL(18, 4)) AS revenue,
    CAST(conversion_value AS DECIMAL(18, 4)) AS conversion_value,
    roas(revenue, cost) AS roas,
    cost_per_conversion(cost, conversions) AS cost_per_conversion,
    currency
FROM joined
ORDER BY ALL;
