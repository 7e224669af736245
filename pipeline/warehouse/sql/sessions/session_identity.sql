-- session_identity_this_run: whether each session dated $run_date was identified by a
-- stable id, for monthly_sessions_per_user.
--
-- The rule: a session is stable-id traffic when any of its events carries a client
-- session id (GA4 ga_session_id, sent with a persistent client id) or a user_id. Every
-- other session comes from a cookie-free visitor id that rotates daily, so its visitor
-- can't be followed across days and it is left out of monthly users.
CREATE OR REPLACE TEMP TABLE session_identity_this_run AS
SELECT
    any_value(session_date) AS session_date,
    session_id,
    bool_or(client_session_id IS NOT NULL OR user_id IS NOT NULL) AS stable_id
FROM stg_events
GROUP BY session_id
ORDER BY session_id;
