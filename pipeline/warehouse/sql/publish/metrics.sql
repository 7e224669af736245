-- The metric formulas, written once: the marts (daily_sessions, daily_cost_per_session,
-- daily_site_summary, weekly and monthly sessions per user) compute their ratios with
-- these macros. TEMP: each connection creates them (models.SETUP_MODELS),
-- none is stored in the warehouse file. A ratio is NULL when its denominator is 0: a day
-- without sessions has no cost per session, rather than an infinite or a zero one.
CREATE OR REPLACE TEMP MACRO ratio(numerator, denominator) AS
    CAST(numerator / nullif(denominator, 0) AS DOUBLE);

-- Cost per session: cost / sessions (blended, in daily_site_summary: all the site's costs).
CREATE OR REPLACE TEMP MACRO cost_per_session(cost, sessions) AS ratio(cost, sessions);

-- Session value: (revenue + conversion value) / sessions.
CREATE OR REPLACE TEMP MACRO session_value(revenue, conversion_value, sessions) AS
    ratio(revenue + conversion_value, sessions);

CREATE OR REPLACE TEMP MACRO revenue_per_session(revenue, sessions) AS ratio(revenue, sessions);

-- Sessions per user: sessions / distinct users.
CREATE OR REPLACE TEMP MACRO sessions_per_user(sessions, users) AS ratio(sessions, users);

CREATE OR REPLACE TEMP MACRO engagement_rate(engaged_sessions, sessions) AS
    ratio(engaged_sessions, sessions);

CREATE OR REPLACE TEMP MACRO bounce_rate(engaged_sessions, sessions) AS
    CAST(1 - engaged_sessions / nullif(sessions, 0) AS DOUBLE);

CREATE OR REPLACE TEMP MACRO pages_per_session(pageviews, sessions) AS ratio(pageviews, sessions);

-- Durations are summed as exact integers (microseconds, milliseconds), divided here.
CREATE OR REPLACE TEMP MACRO avg_session_duration_s(duration_us, sessions) AS
    CAST(duration_us / 1000000 / nullif(sessions, 0) AS DOUBLE);

CREATE OR REPLACE TEMP MACRO avg_engagement_time_s(engagement_ms, sessions) AS
    CAST(engagement_ms / 1000 / nullif(sessions, 0) AS DOUBLE);

-- Return on ad spend: revenue / cost.
CREATE OR REPLACE TEMP MACRO roas(revenue, cost) AS ratio(revenue, cost);

CREATE OR REPLACE TEMP MACRO cost_per_conversion(cost, conversions) AS ratio(cost, conversions);
