-- monthly_sessions_per_user_this_run: sessions / distinct users over the month of
-- $run_date, per site, from the warehouse's sessions of every day of that month built so
-- far (so the row is month-to-date until the month's last day is built).
--
-- Stable ids only (see session_identity.sql): cookie-free visitor ids rotate daily, so
-- their visitors can't be recognised across days and would inflate monthly users.
-- Runs after persist_day.sql, in the same transaction, so today's sessions are included.
CREATE OR REPLACE TEMP TABLE monthly_sessions_per_user_this_run AS
WITH month_sessions AS (
    SELECT s.site_id, s.visitor_id
    FROM sessions AS s
    INNER JOIN session_identity AS i USING (session_date, session_id)
    WHERE i.stable_id
        AND s.session_date >= date_trunc('month', $run_date::DATE)
        AND s.session_date < date_trunc('month', $run_date::DATE) + INTERVAL 1 MONTH
)

SELECT
    -- 'YYYY-MM', the value of the mart's partition key month=YYYY-MM: a reader of the
    -- marts with hive partitioning gets the same column as a reader of the warehouse.
    strftime($run_date::DATE, '%Y-%m') AS month,
    site_id,
    CAST(count(*) AS BIGINT) AS sessions,
    CAST(count(DISTINCT visitor_id) AS BIGINT) AS users,
    CAST(count(*) / nullif(count(DISTINCT visitor_id), 0) AS DOUBLE) AS sessions_per_user
FROM month_sessions
GROUP BY site_id
ORDER BY ALL;
