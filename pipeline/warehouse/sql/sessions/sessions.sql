-- sessions_this_run: one row per session dated $run_date (columns of the `sessions` table).
--
-- - source, medium, campaign, channel_group, device and country: from the session's first
--   event, GA4 style (first by event_ts, then event_id);
-- - engaged (GA4): more than 10 s of engagement time (summed engagement_time_ms; when no
--   event carried any, more than 10 s from first to last event), or a conversion, or >= 2
--   page views; bounce = not engaged. Engagement signals add engagement time only;
-- - engagement_time_s: the summed engagement time;
-- - conversions: purchases, plus goal events counted once per event or once per session
--   as goals(counting) says;
-- - revenue: converted `value` of purchases. A transaction_id counts once per site and
--   day: its first purchase by (event_ts, event_id) carries it; later ones are neither
--   revenue nor conversions (GA4 drops repeated transactions the same way);
-- - conversion_value: the goals' assigned values, counted like the conversions.
--
-- Reads: stg_events (its source, medium, campaign and channel_group were derived, and
-- normalised, at ingestion: pipeline/sessions/attribution.py), goals(name, value, counting).
CREATE OR REPLACE TEMP TABLE sessions_this_run AS
WITH first_events AS (
    SELECT
        e.session_id,
        e.site_id,
        e.visitor_id,
        e.session_date,
        e.source,
        e.medium,
        e.campaign,
        e.channel_group,
        e.device_category,
        e.country
    FROM stg_events AS e
    WHERE e.is_first_event
),

totals AS (
    SELECT
        session_id,
        min(event_ts) FILTER (WHERE NOT is_engagement_signal) AS session_start,
        max(event_ts) FILTER (WHERE NOT is_engagement_signal) AS session_end,
        count(*) FILTER (WHERE NOT is_engagement_signal) AS events,
        count(*) FILTER (WHERE event_name = 'page_view') AS pageviews,
        coalesce(sum(engagement_time_ms), 0) AS engagement_ms,
        count(engagement_time_ms) > 0 AS sent_engagement
    FROM stg_events
    GROUP BY session_id
),

page_views AS (
    SELECT
        session_id,
        page_url,
        row_number() OVER (
            PARTITION BY session_id ORDER BY event_ts, event_id
        ) AS from_start,
        row_number() OVER (
            PARTITION BY session_id ORDER BY event_ts DESC, event_id DESC
        ) AS from_end
    FROM stg_events
    WHERE event_name = 'page_view'
),

pages AS (
    SELECT
        session_id,
        any_value(page_url) FILTER (WHERE from_start = 1) AS entry_page,
        any_value(page_url) FILTER (WHERE from_end = 1) AS exit_page
    FROM page_views
    GROUP BY session_id
),

counted_purchases AS (
    SELECT session_id, value_reporting
    FROM stg_events
    WHERE event_name = 'purchase'
    QUALIFY transaction_id IS NULL OR row_number() OVER (
        PARTITION BY site_id, transaction_id ORDER BY event_ts, event_id
    ) = 1
),

purchases AS (
    SELECT
        session_id,
        count(*) AS purchases,
        sum(value_reporting) AS revenue  -- unconverted amounts are NULL: left out
    FROM counted_purchases
    GROUP BY session_id
),

goal_hits AS (
    -- A purchase is already a conversion, and its value is revenue: a goal named
    -- "purchase" would count it twice.
    SELECT
        e.session_id,
        g.value,
        CASE WHEN g.counting = 'session' THEN 1 ELSE count(*) END AS conversions
    FROM stg_events AS e
    INNER JOIN goals AS g ON g.name = e.event_name
    WHERE e.event_name <> 'purchase'
    GROUP BY e.session_id, g.name, g.value, g.counting
),

goal_totals AS (
    SELECT
        session_id,
        sum(conversions) AS conversions,
        sum(value * conversions) AS conversion_value
    FROM goal_hits
    GROUP BY session_id
),

assembled AS (
    SELECT
        f.*,
        t.session_start,
        t.session_end,
        -- Integer microseconds: the 10 s threshold is exact, not a float comparison.
        epoch_us(t.session_end) - epoch_us(t.session_start) AS duration_us,
        t.events,
        t.pageviews,
        t.engagement_ms,
        t.sent_engagement,
        p.entry_page,
        p.exit_page,
        coalesce(b.purchases, 0) + coalesce(g.conversions, 0) AS conversions,
        coalesce(b.revenue, 0) AS revenue,
        coalesce(g.conversion_value, 0) AS conversion_value
    FROM first_events AS f
    INNER JOIN totals AS t USING (session_id)
    LEFT JOIN pages AS p USING (session_id)
    LEFT JOIN purchases AS b USING (session_id)
    LEFT JOIN goal_totals AS g USING (session_id)
),

classified AS (
    SELECT
        *,
        -- GA4: more than 10 s of engagement time (of duration, when no event of the
        -- session carried engagement time), or a key event, or 2 or more page views.
        CASE
            WHEN sent_engagement THEN engagement_ms > 10000
            ELSE duration_us > 10000000
        END OR conversions >= 1 OR pageviews >= 2 AS engaged
    FROM assembled
)

SELECT
    session_id,
    site_id,
    visitor_id,
    session_date,
    session_start,
    session_end,
    CAST(duration_us / 1000000 AS DOUBLE) AS duration_s,
    CAST(events AS BIGINT) AS events,
    CAST(pageviews AS BIGINT) AS pageviews,
    engaged,
    NOT engaged AS bounce,
    entry_page,
    exit_page,
    source,
    medium,
    campaign,
    channel_group,
    device_category,
    country,
    CAST(conversions AS BIGINT) AS conversions,
    CAST(revenue AS DECIMAL(18, 4)) AS revenue,
    CAST(conversion_value AS DECIMAL(18, 4)) AS conversion_value,
    CAST(engagement_ms / 1000 AS DOUBLE) AS engagement_time_s
FROM classified
ORDER BY session_id;
