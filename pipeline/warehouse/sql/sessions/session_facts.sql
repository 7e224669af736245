-- grain: one row per session (session_id)
-- reads: stg_events, stg_day_users, stg_transactions, stg_refunds, stg_touches, lake_partition_sessions, goals
-- unique: session_id
-- not_null: session_id, site_id, session_date
-- session_facts: one row per session dated $run_date: the columns of the `sessions` table
-- (sessions_this_run.sql), and user_key (session_users_this_run.sql).
--
-- - source, medium, campaign, channel_group, device and country: from the session's first
--   event, GA4 style (first by event_ts, then event_id). A direct session takes the
--   source, medium, campaign and channel of the same user's latest non-direct session in
--   the $attribution_lookback_days before it (stg_touches; none when direct sessions are
--   kept), so its cost join follows too;
-- - engaged (GA4): more than 10 s of engagement time (summed engagement_time_ms; when no
--   event carried any, more than 10 s from first to last event), or a conversion, or >= 2
--   page views; bounce = not engaged. Engagement signals add engagement time only;
-- - engagement_time_s: the summed engagement time;
-- - conversions: purchases, plus goal events counted once per event or once per session
--   as goals(counting) says;
-- - amounts are in the site's currency (stg_events.value_site);
-- - revenue: converted `value` of purchases, gross. A transaction_id counts once per site
--   over the build's window (stg_transactions): its first purchase carries it; later ones
--   are neither revenue nor conversions;
-- - conversion_value: a goal event's own converted `value` when it sent one, else the
--   goal's default (converted from the reporting currency); a goal counted once per
--   session takes its first event's;
-- - refunds: the converted `value` of refund events (a refund without one returns its
--   transaction's whole purchase), on the refund's own session; net_revenue = revenue -
--   refunds. An anonymous refund returns only the anonymous purchase of the transaction
--   it names; the anonymous refunds of a transaction return at most its amount in total
--   (anonymous_refund_shares);
-- - user_key (for session_users): the session's user_id, else its visitor id when that is
--   a stable client id (visitor_scope 'client', or, for events without a scope, a visitor
--   seen with a client session id in the window), else NULL: a cookie-free visitor.
--
-- Source, medium, campaign and channel_group were derived, and normalised, at ingestion
-- (pipeline/sessions/attribution.py); goals has (name, value, counting).
CREATE OR REPLACE TEMP TABLE session_facts AS
WITH events AS NOT MATERIALIZED (
    -- The session's events up to the cut (stg_events).
    SELECT * FROM stg_events WHERE NOT beyond_cut
),

stable_visitors AS (
    -- Through the lake summaries: whether any session of the visitor in the build's
    -- window (not only the day's) showed a client id.
    SELECT DISTINCT l.site_id, l.visitor_id
    FROM lake_partition_sessions AS l
    SEMI JOIN stg_day_users AS u ON u.site_id = l.site_id AND u.attribution_user = l.visitor_id
    WHERE l.event_date BETWEEN $window_start::DATE AND $window_end::DATE AND l.stable_client
),

totals AS (
    SELECT
        session_id,
        arg_min(user_id, (event_ts, event_id)) FILTER (WHERE user_id IS NOT NULL) AS user_id,
        min(event_ts) FILTER (WHERE NOT is_engagement_signal) AS session_start,
        max(event_ts) FILTER (WHERE NOT is_engagement_signal) AS session_end,
        count(*) FILTER (WHERE NOT is_engagement_signal) AS events,
        count(*) FILTER (WHERE event_name = 'page_view') AS pageviews,
        coalesce(sum(engagement_time_ms), 0) AS engagement_ms,
        count(engagement_time_ms) > 0 AS sent_engagement,
        -- *_null: a page view without a URL is still the entry (or exit) page.
        arg_min_null(page_url, (event_ts, event_id)) FILTER (WHERE event_name = 'page_view')
            AS entry_page,
        arg_max_null(page_url, (event_ts, event_id)) FILTER (WHERE event_name = 'page_view')
            AS exit_page
    FROM events
    GROUP BY session_id
),

own_first_events AS (
    SELECT
        e.session_id,
        e.site_id,
        e.visitor_id,
        e.session_date,
        e.site_currency AS currency,
        e.event_ts AS session_start,
        e.source,
        e.medium,
        e.campaign,
        e.channel_group,
        e.device_category,
        e.country,
        coalesce(p.user_id, e.visitor_id) AS attribution_user,
        coalesce(p.user_id, v.visitor_id) AS user_key
    FROM events AS e
    INNER JOIN totals AS p USING (session_id)
    LEFT JOIN stable_visitors AS v USING (site_id, visitor_id)
    WHERE e.is_first_event
),

last_non_direct AS (
    -- The latest touch before the session (an ASOF join: one match per session, however
    -- many touches a busy user has), if it started within the look-back.
    SELECT
        f.session_id,
        {'source': t.source, 'medium': t.medium, 'campaign': t.campaign,
         'channel_group': t.channel_group} AS touch
    FROM (SELECT * FROM own_first_events WHERE channel_group = 'Direct') AS f
    ASOF INNER JOIN stg_touches AS t
        ON t.site_id = f.site_id
        AND t.attribution_user = f.attribution_user
        AND t.session_start < f.session_start
    WHERE t.session_start
            >= f.session_start - to_days(CAST($attribution_lookback_days AS INTEGER))
),

first_events AS (
    SELECT
        f.* EXCLUDE (session_start, attribution_user, source, medium, campaign, channel_group),
        coalesce(d.touch.source, f.source) AS source,
        coalesce(d.touch.medium, f.medium) AS medium,
        coalesce(d.touch.campaign, f.campaign) AS campaign,
        coalesce(d.touch.channel_group, f.channel_group) AS channel_group
    FROM own_first_events AS f
    LEFT JOIN last_non_direct AS d USING (session_id)
),

counted_purchases AS (
    SELECT e.session_id, e.value_site
    FROM events AS e
    LEFT JOIN stg_transactions AS t USING (site_id, transaction_id)
    WHERE e.event_name = 'purchase'
        AND (e.transaction_id IS NULL OR e.event_id = t.counted_event_id)
),

purchases AS (
    SELECT
        session_id,
        count(*) AS purchases,
        sum(value_site) AS revenue  -- unconverted amounts are NULL: left out
    FROM counted_purchases
    GROUP BY session_id
),

anonymous_refund_shares AS (
    -- Anonymous refunds of one transaction return, together, at most its anonymous
    -- purchase's counted amount: each takes what it claims (its own amount, or the whole
    -- purchase when it sent none) of what the refunds before it (by event_ts, event_id,
    -- over the build's window) left.
    SELECT
        site_id, event_date, event_id, greatest(0, least(claim, cap - (claimed - claim))) AS share
    FROM (
        SELECT
            site_id,
            event_date,
            event_id,
            claim,
            cap,
            sum(claim) OVER (
                PARTITION BY site_id, transaction_id ORDER BY event_ts, event_id, event_date
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS claimed
        FROM (
            SELECT
                r.site_id,
                r.transaction_id,
                r.event_ts,
                r.event_date,
                r.event_id,
                CASE WHEN r.value IS NULL THEN t.purchase_value ELSE r.value_site END
                    AS claim,
                coalesce(t.purchase_value, 0) AS cap
            FROM stg_refunds AS r
            INNER JOIN stg_transactions AS t USING (site_id, transaction_id)
            WHERE r.is_anonymous AND t.purchase_is_anonymous
        )
    )
),

refunds AS (
    SELECT
        e.session_id,
        sum(
            CASE
                WHEN NOT e.is_anonymous
                    THEN CASE WHEN e.value IS NULL THEN t.purchase_value ELSE e.value_site END
                -- Anyone can send an anonymous refund: it returns only an anonymous
                -- purchase it names, all of them together at most that purchase's
                -- amount, never an authenticated one (the transaction's counted
                -- purchase decides).
                WHEN t.purchase_is_anonymous THEN a.share
            END
        ) AS refunds
    FROM events AS e
    LEFT JOIN stg_transactions AS t USING (site_id, transaction_id)
    LEFT JOIN anonymous_refund_shares AS a USING (site_id, event_date, event_id)
    WHERE e.event_name = 'refund'
    GROUP BY e.session_id
),

goal_events AS (
    -- A purchase is already a conversion, and its value is revenue: a goal named
    -- "purchase" would count it twice. A value sent with the event wins over the goal's
    -- default (NULL when its currency has no rate: flagged, left out of the sum).
    SELECT
        e.session_id,
        g.name,
        g.counting,
        e.event_ts,
        e.event_id,
        CASE
            WHEN e.value IS NOT NULL THEN e.value_site
            WHEN e.goal_factor = 1 THEN g.value
            -- goals' values are in the reporting currency: in the site's currency here
            -- (NULL when it has no rate: the check on site currencies flags it).
            ELSE CAST(g.value * e.goal_factor AS DECIMAL(18, 4))
        END AS value
    FROM events AS e
    INNER JOIN goals AS g ON g.name = e.event_name
    WHERE e.event_name NOT IN ('purchase', 'refund')
),

goal_hits AS (
    SELECT
        session_id,
        CASE WHEN any_value(counting) = 'session' THEN 1 ELSE count(*) END AS conversions,
        CASE
            -- Through a struct: arg_min skips NULL values, and the first event's value
            -- counts even when it is NULL (a currency without a rate).
            WHEN any_value(counting) = 'session'
                THEN arg_min({'value': value}, (event_ts, event_id)).value
            ELSE sum(value)
        END AS value
    FROM goal_events
    GROUP BY session_id, name
),

goal_totals AS (
    SELECT
        session_id,
        sum(conversions) AS conversions,
        sum(value) AS conversion_value
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
        t.entry_page,
        t.exit_page,
        coalesce(b.purchases, 0) + coalesce(g.conversions, 0) AS conversions,
        coalesce(b.revenue, 0) AS revenue,
        coalesce(g.conversion_value, 0) AS conversion_value,
        coalesce(r.refunds, 0) AS refunds
    FROM first_events AS f
    INNER JOIN totals AS t USING (session_id)
    LEFT JOIN purchases AS b USING (session_id)
    LEFT JOIN goal_totals AS g USING (session_id)
    LEFT JOIN refunds AS r USING (session_id)
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
    CAST(engagement_ms / 1000 AS DOUBLE) AS engagement_time_s,
    CAST(refunds AS DECIMAL(18, 4)) AS refunds,
    CAST(revenue - refunds AS DECIMAL(18, 4)) AS net_revenue,
    currency,
    user_key
FROM classified;
