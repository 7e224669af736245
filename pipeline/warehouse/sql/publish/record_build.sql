-- Record $run_date as built from these fingerprints (grain: date), replacing its old row.
INSERT OR REPLACE INTO build_manifest
VALUES (
    $run_date::DATE, $lake, $costs, $config, $models, $built_at::TIMESTAMPTZ
);
