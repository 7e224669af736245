-- grain: one row per date x site_id that had sessions or costs
-- reads: session_totals, sessions_this_run, stg_costs, currency_rates
-- unique: date, site_id
-- not_null: date, site_id
-- daily_site_summary_this_run: one row per date x site_id that had sessions or costs.
-- cost_per_session is blended: all the site's costs / all its
-- sessions, costs of campaigns that brought no session included.
--
-- Amounts are in the site's currency (`currency`); the *_reporting columns hold them in
-- the reporting currency (`reporting_currency`, $currency), converted with
-- [currency_rates], so that sites can be added up: NULL when the site's currency has no
-- rate (quality_checks flags it).
--
-- Parameters: $currency.
CREATE OR REPLACE TEMP TABLE daily_site_summary_this_run AS
WITH site_totals AS (
    SELECT
        date,
        site_id,
        any_value(currency) AS currency,
        sum(sessions) AS sessions,
        sum(pageviews) AS pageviews,
        sum(engaged_sessions) AS engaged_sessions,
        sum(conversions) AS conversions,
        sum(revenue) AS revenue,
        sum(conversion_value) AS conversion_value,
        sum(engagement_ms) AS engagement_ms,
        sum(refunds) AS refunds
    FROM session_totals
    GROUP BY ALL
),

site_users AS (
    -- A distinct count: not the sum of session_totals' users (a visitor in two channels
    -- is one user of the site).
    SELECT session_date AS date, site_id, count(DISTINCT visitor_id) AS users
    FROM sessions_this_run
    GROUP BY ALL
),

cost_totals AS (
    SELECT date, site_id, any_value(currency) AS currency, sum(cost) AS cost
    FROM stg_costs
    GROUP BY ALL
),

joined AS (
    SELECT
        date,
        site_id,
        coalesce(s.currency, c.currency) AS currency,
        coalesce(s.sessions, 0) AS sessions,
        coalesce(u.users, 0) AS users,
        coalesce(s.pageviews, 0) AS pageviews,
        coalesce(s.engaged_sessions, 0) AS engaged_sessions,
        coalesce(s.conversions, 0) AS conversions,
        coalesce(s.revenue, 0) AS revenue,
        coalesce(s.conversion_value, 0) AS conversion_value,
        coalesce(c.cost, 0) AS cost,
        coalesce(s.engagement_ms, 0) AS engagement_ms,
        coalesce(s.refunds, 0) AS refunds
    FROM site_totals AS s
    LEFT JOIN site_users AS u USING (date, site_id)
    FULL OUTER JOIN cost_totals AS c USING (date, site_id)
),

rated AS (
    -- Units of the reporting currency per unit of the site's ($currency itself: 1), as
    -- a DECIMAL: the reporting currency's own amounts stay exact.
    SELECT
        j.*,
        CAST(CASE WHEN j.currency = $currency THEN 1 ELSE r.rate END AS DECIMAL(18, 8)) AS rate
    FROM joined AS j
    LEFT JOIN currency_rates AS r ON r.currency = j.currency
)

SELECT
    date,
    site_id,
    CAST(sessions AS BIGINT) AS sessions,
    CAST(users AS BIGINT) AS users,
    CAST(pageviews AS BIGINT) AS pageviews,
    CAST(engaged_sessions AS BIGINT) AS engaged_sessions,
    CAST(conversions AS BIGINT) AS conversions,
    CAST(revenue AS DECIMAL(18, 4)) AS revenue,
    CAST(conversion_value AS DECIMAL(18, 4)) AS conversion_value,
    CAST(cost AS DECIMAL(18, 4)) AS cost,
    cost_per_session(cost, sessions) AS cost_per_session,
    session_value(revenue, conversion_value, sessions) AS session_value,
    revenue_per_session(revenue, sessions) AS revenue_per_session,
    sessions_per_user(sessions, users) AS sessions_per_user,
    bounce_rate(engaged_sessions, sessions) AS bounce_rate,
    CAST(engagement_ms / 1000 AS DOUBLE) AS engagement_time_s,
    avg_engagement_time_s(engagement_ms, sessions) AS avg_engagement_time_s,
    CAST(refunds AS DECIMAL(18, 4)) AS refunds,
    CAST(revenue - refunds AS DECIMAL(18, 4)) AS net_revenue,
    currency,
    $currency AS reporting_currency,
    CAST(revenue * rate AS DECIMAL(18, 4)) AS revenue_reporting,
    CAST(conversion_value * rate AS DECIMAL(18, 4)) AS conversion_value_reporting,
    CAST(cost * rate AS DECIMAL(18, 4)) AS cost_reporting,
    CAST((revenue - refunds) * rate AS DECIMAL(18, 4)) AS net_revenue_reporting
FROM rated
ORDER BY ALL;
