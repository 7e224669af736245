-- grain: one row per date x site_id x channel_group x source x medium x campaign x device_category x country
-- reads: session_totals
-- unique: date, site_id, channel_group, source, medium, campaign, device_category, country
-- not_null: date, site_id
-- daily_sessions_this_run: the day's sessions at the grain
-- date x site_id x channel_group x source x medium x campaign x device_category x country.
-- session_totals' measures, then ratios of them (NULL when the denominator is 0); amounts
-- in the site's currency (`currency`).
CREATE OR REPLACE TEMP TABLE daily_sessions_this_run AS
SELECT
    date,
    site_id,
    channel_group,
    source,
    medium,
    campaign,
    device_category,
    country,
    CAST(sessions AS BIGINT) AS sessions,
    CAST(users AS BIGINT) AS users,
    CAST(engaged_sessions AS BIGINT) AS engaged_sessions,
    CAST(pageviews AS BIGINT) AS pageviews,
    CAST(duration_us / 1000000 AS DOUBLE) AS total_duration_s,
    CAST(conversions AS BIGINT) AS conversions,
    CAST(revenue AS DECIMAL(18, 4)) AS revenue,
    CAST(conversion_value AS DECIMAL(18, 4)) AS conversion_value,
    CAST((revenue + conversion_value) / nullif(sessions, 0) AS DOUBLE) AS session_value,
    CAST(revenue / nullif(sessions, 0) AS DOUBLE) AS revenue_per_session,
    CAST(engaged_sessions / nullif(sessions, 0) AS DOUBLE) AS engagement_rate,
    CAST(1 - engaged_sessions / nullif(sessions, 0) AS DOUBLE) AS bounce_rate,
    CAST(duration_us / 1000000 / nullif(sessions, 0) AS DOUBLE) AS avg_session_duration_s,
    CAST(pageviews / nullif(sessions, 0) AS DOUBLE) AS pages_per_session,
    CAST(sessions / nullif(users, 0) AS DOUBLE) AS sessions_per_user,
    CAST(engagement_ms / 1000 AS DOUBLE) AS engagement_time_s,
    CAST(engagement_ms / 1000 / nullif(sessions, 0) AS DOUBLE) AS avg_engagement_time_s,
    CAST(refunds AS DECIMAL(18, 4)) AS refunds,
    CAST(revenue - refunds AS DECIMAL(18, 4)) AS net_revenue,
    currency
FROM session_totals
ORDER BY ALL;
