-- grain: one row per user of the day's sessions (site_id, attribution_user)
-- reads: stg_events
-- unique: site_id, attribution_user
-- not_null: date, site_id, attribution_user
--
-- stg_day_users: whom the day's sessions may belong to, for last non-direct attribution:
-- every user_id and every visitor id of their events (a session's attribution user is
-- its user_id when it sent one, else its visitor id). Kept in the warehouse
-- (day_attribution_users), so the build manifest can tell, when late events reach the
-- look-back, whether the touches of exactly these users changed.
CREATE OR REPLACE TEMP TABLE stg_day_users AS
SELECT $run_date::DATE AS date, site_id, visitor_id AS attribution_user
FROM stg_events
UNION
SELECT $run_date::DATE, site_id, user_id
FROM stg_events
WHERE user_id IS NOT NULL
ORDER BY ALL;
