-- Replace the month of $run_date in monthly_sessions_per_user (same transaction as
-- persist_day.sql).
DELETE FROM monthly_sessions_per_user
WHERE month = strftime($run_date::DATE, '%Y-%m');
INSERT INTO monthly_sessions_per_user BY NAME
SELECT * FROM monthly_sessions_per_user_this_run;
