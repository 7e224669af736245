-- grain: one row per ISO week x site_id
-- reads: session_users
-- unique: week, site_id
-- not_null: week, site_id
-- weekly_sessions_per_user_this_run: sessions / distinct users over the ISO week
-- (Monday to Sunday) of $run_date, per site, like monthly_sessions_per_user: sessions with
-- a user only, week-to-date until the week's last day is built.
CREATE OR REPLACE TEMP TABLE weekly_sessions_per_user_this_run AS
SELECT
    -- 'YYYY-Www' (ISO year and week), the value of the mart's partition key week=.
    strftime($run_date::DATE, '%G-W%V') AS week,
    site_id,
    CAST(count(*) AS BIGINT) AS sessions,
    CAST(count(DISTINCT user_key) AS BIGINT) AS users,
    sessions_per_user(count(*), count(DISTINCT user_key)) AS sessions_per_user
FROM session_users
WHERE session_date >= date_trunc('week', $run_date::DATE)
    AND session_date < date_trunc('week', $run_date::DATE) + INTERVAL 7 DAY
GROUP BY site_id
ORDER BY ALL;
