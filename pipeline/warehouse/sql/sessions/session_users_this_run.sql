-- grain: one row per session with a user (session_id)
-- reads: session_facts
-- unique: session_id
-- not_null: session_id, site_id, session_date, user_key
-- session_users_this_run: the user of each session dated $run_date that has one (grain:
-- session), for weekly and monthly sessions per user.
--
-- A user is the session's user_id when known, else its visitor id when that is a stable
-- client id (GA4 client_id), whether or not the session's hits carried a session id.
-- A cookie-free visitor id rotates daily, so its visitor can't be followed across days:
-- such a session has no user here and is left out of the weekly and monthly ratios.
CREATE OR REPLACE TEMP TABLE session_users_this_run AS
SELECT session_date, session_id, site_id, user_key
FROM session_facts
WHERE user_key IS NOT NULL
ORDER BY session_id;
