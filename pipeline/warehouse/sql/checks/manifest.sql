-- Every built day's recorded fingerprints (grain: date).
SELECT date, lake, costs, config, models, attribution, built_at
FROM build_manifest
ORDER BY date;
