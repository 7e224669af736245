-- The users $run_date was last built with (day_attribution_users), as the stg_day_users
-- the build made: stg_touches then gives the touches a build would take for them now.
CREATE OR REPLACE TEMP TABLE stg_day_users AS
SELECT date, site_id, attribution_user
FROM day_attribution_users
WHERE date = $run_date::DATE
ORDER BY ALL;
