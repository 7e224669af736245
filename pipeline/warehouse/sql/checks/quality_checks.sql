-- Data-quality checks after a day's build ($run_date). One row per check:
-- name, ok, detail, and for a check that names campaigns, the first few names (`names`,
-- at most $max_listed) and how many there are (`named`): flows/quality.py lists them
-- after the detail, cut and escaped, and shows the checks on the CLI and as a Prefect
-- artifact. A campaign's name is whatever a visitor's utm_campaign said.
-- Across dates too: a client session id re-used long after its session ended comes back
-- as a session of a later date (docs/tables.md, Sessions).
-- Parameters: $run_date, $max_listed, $config_fingerprint, $models_fingerprint (the current
-- ones). Reads: sessions, daily_cost_per_session, daily_site_summary, build_manifest, ...
SELECT 'no duplicate session ids' AS name,
       count(*) = 0 AS ok,
       count(*) || ' session ids of this day appear more than once in the warehouse' AS detail,
       []::VARCHAR[] AS names,
       0 AS named
FROM (
    SELECT s.session_id
    FROM sessions AS s
    -- Another day built under other settings or models is stale and waits for its rebuild
    -- (a site's new time zone moves sessions across dates): its copy is not a duplicate.
    LEFT JOIN build_manifest AS m ON m.date = s.session_date
    WHERE s.session_id IN (SELECT session_id FROM sessions WHERE session_date = $run_date)
      AND (
          s.session_date = $run_date
          OR (m.config = $config_fingerprint AND m.models = $models_fingerprint)
      )
    GROUP BY s.session_id HAVING count(*) > 1
)
UNION ALL
SELECT 'costs without sessions',
       count(*) = 0,
       count(*) || ' cost rows have no sessions',
       coalesce(min(source || '/' || medium || '/' || coalesce(campaign, '(none)'), $max_listed), []),
       count(*)
FROM daily_cost_per_session
WHERE date = $run_date AND sessions = 0 AND cost > 0
UNION ALL
SELECT 'summary matches sessions',
       coalesce(sum(s.sessions), 0) = (SELECT count(*) FROM sessions WHERE session_date = $run_date),
       'daily_site_summary has ' || coalesce(sum(s.sessions), 0) || ' sessions, sessions table has '
           || (SELECT count(*) FROM sessions WHERE session_date = $run_date),
       [],
       0
FROM daily_site_summary AS s
WHERE s.date = $run_date
UNION ALL
-- Paid mediums as GA4's channel rules read them (cpc, ppc, retargeting, paid*), on sites
-- that loaded costs for the day: a paid session whose campaign has no cost row usually
-- means a cost file that spells source, medium or campaign differently.
SELECT 'paid sessions without a cost row',
       count(*) = 0,
       coalesce(sum(s.sessions), 0) || ' paid sessions in ' || count(*) || ' groups have no cost row',
       coalesce(min(s.source || '/' || s.medium || '/' || s.campaign, $max_listed), []),
       count(*)
FROM daily_cost_per_session AS s
WHERE s.date = $run_date
    AND s.sessions > 0
    AND regexp_matches(s.medium, '^(.*cp.*|ppc|retargeting|paid.*)$')
    AND s.site_id IN (SELECT site_id FROM marketing_costs WHERE date = $run_date)
    AND NOT EXISTS (
        SELECT 1 FROM marketing_costs AS c
        WHERE c.date = s.date AND c.site_id = s.site_id AND c.source = s.source
            AND c.medium = s.medium AND c.campaign IS NOT DISTINCT FROM s.campaign
    )
UNION ALL
SELECT 'share of cost matched to sessions',
       coalesce(sum(cost) FILTER (WHERE sessions = 0), 0) = 0,
       coalesce(round(100 * sum(cost) FILTER (WHERE sessions > 0) / nullif(sum(cost), 0), 1), 100)
           || '% of ' || coalesce(sum(cost), 0) || ' cost matched sessions',
       [],
       0
FROM daily_cost_per_session
WHERE date = $run_date;
