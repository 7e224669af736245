-- Record $run_date as built from these fingerprints (grain: date), replacing its old row.
INSERT OR REPLACE INTO build_manifest BY NAME
SELECT
    $run_date::DATE AS date,
    $lake AS lake,
    $costs AS costs,
    $config AS config,
    $models AS models,
    $attribution AS attribution,
    $built_at::TIMESTAMPTZ AS built_at;
