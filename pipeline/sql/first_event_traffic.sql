-- The inputs of GA4's source / medium rules, for each session's first event.
--
-- The runner derives source and medium from these with pipeline.channels.source_medium,
-- the very rules the lake's channel_group was computed with (see pipeline/lake.py), and
-- hands the result back as the table traffic_sources for the sessions model. Only the
-- distinct combinations are sent: a few hundred a day, whatever the traffic.
SELECT DISTINCT utm_source, utm_medium, click_id_type, page_referrer, site_id
FROM stg_events
WHERE is_first_event
ORDER BY ALL;
