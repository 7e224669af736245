-- The warehouse's output tables: the contract BI tools read. The models cast their
-- columns to exactly these types; the daily build replaces one date's rows at a time.
-- Money is DECIMAL (exact, so sums are the same whatever the thread count); ratios are
-- DOUBLE and NULL when their denominator is 0. BI tools roll up the additive measures,
-- never the ratios.

-- One row per session, on the local date (its site's time zone) of its first event.
-- Amounts are in the site's currency, `currency`, in every table that has that column.
CREATE TABLE IF NOT EXISTS sessions (
    session_id VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    visitor_id VARCHAR NOT NULL,
    session_date DATE NOT NULL,
    session_start TIMESTAMPTZ NOT NULL,
    session_end TIMESTAMPTZ NOT NULL,
    duration_s DOUBLE NOT NULL,
    events BIGINT NOT NULL,
    pageviews BIGINT NOT NULL,
    engaged BOOLEAN NOT NULL,
    bounce BOOLEAN NOT NULL,
    entry_page VARCHAR,
    exit_page VARCHAR,
    source VARCHAR NOT NULL,
    medium VARCHAR NOT NULL,
    campaign VARCHAR,
    channel_group VARCHAR NOT NULL,
    device_category VARCHAR,
    country VARCHAR,
    conversions BIGINT NOT NULL,
    revenue DECIMAL(18, 4) NOT NULL,
    conversion_value DECIMAL(18, 4) NOT NULL,
    engagement_time_s DOUBLE NOT NULL,
    refunds DECIMAL(18, 4) NOT NULL,
    net_revenue DECIMAL(18, 4) NOT NULL,
    currency VARCHAR
);

-- Internal (not a mart): the user of each session that has one (a user_id, or a stable
-- client id), for weekly and monthly sessions per user. Keyed hashes only.
CREATE TABLE IF NOT EXISTS session_users (
    session_date DATE NOT NULL,
    session_id VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    user_key VARCHAR NOT NULL
);

-- Internal (not a mart): whom each built day's sessions may belong to (stg_day_users),
-- so the build manifest can recompute the touches of exactly these users when late
-- events reach the day's attribution look-back. Keyed hashes only.
CREATE TABLE IF NOT EXISTS day_attribution_users (
    date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    attribution_user VARCHAR NOT NULL
);

-- Grain: date x site_id x channel_group x source x medium x campaign x device_category x country.
CREATE TABLE IF NOT EXISTS daily_sessions (
    date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    channel_group VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    medium VARCHAR NOT NULL,
    campaign VARCHAR,
    device_category VARCHAR,
    country VARCHAR,
    sessions BIGINT NOT NULL,
    users BIGINT NOT NULL,
    engaged_sessions BIGINT NOT NULL,
    pageviews BIGINT NOT NULL,
    total_duration_s DOUBLE NOT NULL,
    conversions BIGINT NOT NULL,
    revenue DECIMAL(18, 4) NOT NULL,
    conversion_value DECIMAL(18, 4) NOT NULL,
    session_value DOUBLE,
    revenue_per_session DOUBLE,
    engagement_rate DOUBLE,
    bounce_rate DOUBLE,
    avg_session_duration_s DOUBLE,
    pages_per_session DOUBLE,
    sessions_per_user DOUBLE,
    engagement_time_s DOUBLE NOT NULL,
    avg_engagement_time_s DOUBLE,
    refunds DECIMAL(18, 4) NOT NULL,
    net_revenue DECIMAL(18, 4) NOT NULL,
    currency VARCHAR
);

-- Grain: date x site_id x source x medium x campaign. Cost with no sessions and sessions
-- with no cost both appear (cost 0, sessions 0).
CREATE TABLE IF NOT EXISTS daily_cost_per_session (
    date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    medium VARCHAR NOT NULL,
    campaign VARCHAR,
    cost DECIMAL(18, 4) NOT NULL,
    sessions BIGINT NOT NULL,
    cost_per_session DOUBLE,
    revenue DECIMAL(18, 4) NOT NULL,
    conversion_value DECIMAL(18, 4) NOT NULL,
    roas DOUBLE,
    cost_per_conversion DOUBLE,
    currency VARCHAR
);

-- Grain: date x site_id. cost_per_session is blended: all costs / all sessions. The
-- *_reporting columns: the amounts in `reporting_currency` (the global `currency`), to add
-- sites up; NULL when the site's currency has no rate.
CREATE TABLE IF NOT EXISTS daily_site_summary (
    date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    sessions BIGINT NOT NULL,
    users BIGINT NOT NULL,
    pageviews BIGINT NOT NULL,
    engaged_sessions BIGINT NOT NULL,
    conversions BIGINT NOT NULL,
    revenue DECIMAL(18, 4) NOT NULL,
    conversion_value DECIMAL(18, 4) NOT NULL,
    cost DECIMAL(18, 4) NOT NULL,
    cost_per_session DOUBLE,
    session_value DOUBLE,
    revenue_per_session DOUBLE,
    sessions_per_user DOUBLE,
    bounce_rate DOUBLE,
    engagement_time_s DOUBLE NOT NULL,
    avg_engagement_time_s DOUBLE,
    refunds DECIMAL(18, 4) NOT NULL,
    net_revenue DECIMAL(18, 4) NOT NULL,
    currency VARCHAR,
    reporting_currency VARCHAR,
    revenue_reporting DECIMAL(18, 4),
    conversion_value_reporting DECIMAL(18, 4),
    cost_reporting DECIMAL(18, 4),
    net_revenue_reporting DECIMAL(18, 4)
);

-- Grain: ISO week x site_id; as monthly_sessions_per_user below.
CREATE TABLE IF NOT EXISTS weekly_sessions_per_user (
    week VARCHAR NOT NULL,  -- 'YYYY-Www', ISO 8601
    site_id VARCHAR NOT NULL,
    sessions BIGINT NOT NULL,
    users BIGINT NOT NULL,
    sessions_per_user DOUBLE
);

-- Grain: month x site_id, sessions with a user only (a user_id, or a stable client id):
-- cookie-free visitor ids rotate daily, so a cookie-free visitor can never be counted as
-- the same user on two days.
CREATE TABLE IF NOT EXISTS monthly_sessions_per_user (
    month VARCHAR NOT NULL,  -- 'YYYY-MM'
    site_id VARCHAR NOT NULL,
    sessions BIGINT NOT NULL,
    users BIGINT NOT NULL,
    sessions_per_user DOUBLE
);

-- The migrations applied to this warehouse (publish/warehouse_migrations.sql, by its
-- digest): each applied once, and recorded here.
CREATE TABLE IF NOT EXISTS warehouse_migrations (
    migration VARCHAR PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL
);
