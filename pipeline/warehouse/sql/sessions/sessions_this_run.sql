-- grain: one row per session (session_id)
-- reads: session_facts
-- unique: session_id
-- not_null: session_id, site_id, session_date
-- sessions_this_run: the day's rows of the `sessions` table: session_facts without
-- user_key (which only session_users_this_run keeps).
CREATE OR REPLACE TEMP TABLE sessions_this_run AS
SELECT * EXCLUDE (user_key)
FROM session_facts
ORDER BY session_id;
