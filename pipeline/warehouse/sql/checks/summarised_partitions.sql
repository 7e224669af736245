-- Each summarised partition and the fingerprint of the files it was summarised from
-- (grain: event_date).
SELECT event_date, files FROM lake_partitions ORDER BY event_date;
