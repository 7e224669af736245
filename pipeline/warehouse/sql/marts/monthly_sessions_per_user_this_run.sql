-- grain: one row per month x site_id
-- reads: session_users
-- unique: month, site_id
-- not_null: month, site_id
-- monthly_sessions_per_user_this_run: sessions / distinct users over the month of
-- $run_date, per site, from the warehouse's sessions of every day of that month built so
-- far (so the row is month-to-date until the month's last day is built).
--
-- Sessions with a user only (session_users_this_run.sql): a user_id, or a stable client id.
-- Cookie-free visitor ids rotate daily, so their visitors can't be recognised across days
-- and would inflate users. Runs after the day is stored, in the same transaction, so
-- today's sessions are included.
CREATE OR REPLACE TEMP TABLE monthly_sessions_per_user_this_run AS
SELECT
    -- 'YYYY-MM', the value of the mart's partition key month=YYYY-MM: a reader of the
    -- marts with hive partitioning gets the same column as a reader of the warehouse.
    strftime($run_date::DATE, '%Y-%m') AS month,
    site_id,
    CAST(count(*) AS BIGINT) AS sessions,
    CAST(count(DISTINCT user_key) AS BIGINT) AS users,
    sessions_per_user(count(*), count(DISTINCT user_key)) AS sessions_per_user
FROM session_users
WHERE session_date >= date_trunc('month', $run_date::DATE)
    AND session_date < date_trunc('month', $run_date::DATE) + INTERVAL 1 MONTH
GROUP BY site_id
ORDER BY ALL;
