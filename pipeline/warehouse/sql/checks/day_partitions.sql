-- The partitions from $first to $last (BuildWindow.reach) that the sessions dated the
-- build's day have events on (grain: event_date): the only ones whose raw events it reads.
SELECT DISTINCT p.event_date
FROM lake_partition_sessions AS p
SEMI JOIN stg_day_sessions AS d ON d.session_id = p.session_id
WHERE p.event_date BETWEEN $first::DATE AND $last::DATE
ORDER BY p.event_date;
