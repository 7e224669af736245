-- Every built day's recorded fingerprints (grain: date). Every column, by name: a
-- warehouse written by an older release (opened read-only by `status`, so not yet
-- migrated) lacks the newer ones.
SELECT *
FROM build_manifest
ORDER BY date;
