-- Data-quality checks after a day's build ($run_date). One row per check:
-- name, ok, detail. Read by flows/quality.py and shown as a Prefect artifact.
SELECT 'no duplicate session ids' AS name,
       count(*) = 0 AS ok,
       count(*) || ' session ids appear more than once' AS detail
FROM (
    SELECT session_id FROM sessions
    WHERE session_date = $run_date
    GROUP BY session_id HAVING count(*) > 1
)
UNION ALL
SELECT 'costs without sessions',
       count(*) = 0,
       count(*) || ' cost rows have no sessions'
           || coalesce(': ' || string_agg(source || '/' || medium || '/' || coalesce(campaign, '(none)'), ', '
                                         ORDER BY source, medium, campaign), '')
FROM daily_cost_per_session
WHERE date = $run_date AND sessions = 0 AND cost > 0
UNION ALL
SELECT 'summary matches sessions',
       coalesce(sum(s.sessions), 0) = (SELECT count(*) FROM sessions WHERE session_date = $run_date),
       'daily_site_summary has ' || coalesce(sum(s.sessions), 0) || ' sessions, sessions table has '
           || (SELECT count(*) FROM sessions WHERE session_date = $run_date)
FROM daily_site_summary AS s
WHERE s.date = $run_date;
