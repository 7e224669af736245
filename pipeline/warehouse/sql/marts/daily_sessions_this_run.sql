-- grain: one row per date x site_id x channel_group x source x medium x campaign x device_category x country
-- reads: session_totals
-- unique: date, site_id, channel_group, source, medium, campaign, device_category, country
-- not_null: date, site_id
-- daily_sessions_this_run: the day's sessions at the grain
-- date x site_id x channel_group x source x medium x campaign x device_category x country.
-- session_totals' measures, then ratios of them (sql/publish/metrics.sql: NULL when the
-- denominator is 0); amounts in the site's currency (`currency`).
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
    session_value(revenue, conversion_value, sessions) AS session_value,
    revenue_per_session(revenue, sessions) AS revenue_per_session,
    engagement_rate(engaged_sessions, sessions) AS engagement_rate,
    bounce_rate(engaged_sessions, sessions) AS bounce_rate,
    avg_session_duration_s(duration_us, sessions) AS avg_session_duration_s,
    pages_per_session(pageviews, sessions) AS pages_per_session,
    sessions_per_user(sessions, users) AS sessions_per_user,
    CAST(engagement_ms / 1000 AS DOUBLE) AS engagement_time_s,
    avg_engagement_time_s(engagement_ms, sessions) AS avg_engagement_time_s,
    CAST(refunds AS DECIMAL(18, 4)) AS refunds,
    CAST(revenue - refunds AS DECIMAL(18, 4)) AS net_revenue,
    currency
FROM session_totals
ORDER BY ALL;
