-- build_manifest: one row per built day (grain: date). What the day was built from; a day
-- is up to date when these fingerprints equal the current ones (see
-- pipeline/warehouse/manifest.py). Written only after the day's marts are published.
CREATE TABLE IF NOT EXISTS build_manifest (
    date DATE PRIMARY KEY,
    lake VARCHAR NOT NULL,       -- the lake files its build read: names and sizes
    costs VARCHAR NOT NULL,      -- its marketing_costs rows: count, total, newest load
    config VARCHAR NOT NULL,     -- the settings the build applies
    models VARCHAR NOT NULL,     -- the SQL models' text
    built_at TIMESTAMPTZ NOT NULL
);
-- The partitions only its attribution look-back reads, each with its files' digest (JSON).
-- Added after the table's first version: days recorded before have none (their models
-- fingerprint differs anyway, so they are stale).
ALTER TABLE build_manifest ADD COLUMN IF NOT EXISTS attribution VARCHAR DEFAULT '{}';
