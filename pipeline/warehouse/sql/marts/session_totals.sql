-- grain: one row per date x site_id x channel_group x source x medium x campaign x device_category x country
-- reads: sessions_this_run
-- unique: date, site_id, channel_group, source, medium, campaign, device_category, country
-- not_null: date, site_id
-- session_totals: grain date x site_id x channel_group x source x medium x campaign x
-- device_category x country (the daily_sessions grain, the finest the daily tables use).
--
-- The additive measures of the day's sessions, summed once here; daily_sessions,
-- daily_cost_per_session and daily_site_summary roll them up to their own grains.
-- `users` is a distinct count at this grain only: it cannot be summed to a coarser one,
-- so daily_site_summary counts its users from the sessions again.
CREATE OR REPLACE TEMP TABLE session_totals AS
SELECT
    session_date AS date,
    site_id,
    channel_group,
    source,
    medium,
    campaign,
    device_category,
    country,
    currency,  -- the site's: one per site
    count(*) AS sessions,
    count(DISTINCT visitor_id) AS users,
    count(*) FILTER (WHERE engaged) AS engaged_sessions,
    sum(pageviews) AS pageviews,
    -- Integer microseconds: exact, so identical whatever the summing order.
    sum(epoch_us(session_end) - epoch_us(session_start)) AS duration_us,
    -- Milliseconds, exact for the same reason.
    sum(CAST(round(engagement_time_s * 1000) AS BIGINT)) AS engagement_ms,
    sum(conversions) AS conversions,
    sum(revenue) AS revenue,
    sum(conversion_value) AS conversion_value,
    sum(refunds) AS refunds
FROM sessions_this_run
GROUP BY ALL;
