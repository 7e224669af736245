-- marketing_costs: one row per loaded cost row (grain: date x site_id x source x medium x
-- campaign x ad_group x term x content). The columns of COST_SCHEMA
-- (pipeline/warehouse/cost_schema.py, which a test holds this to), plus loaded_at.
CREATE TABLE IF NOT EXISTS marketing_costs (
    date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    medium VARCHAR NOT NULL,
    campaign VARCHAR,
    ad_group VARCHAR,
    term VARCHAR,
    content VARCHAR,
    cost DECIMAL(18, 4) NOT NULL,
    currency VARCHAR NOT NULL,
    clicks BIGINT,
    impressions BIGINT,
    loaded_at TIMESTAMPTZ NOT NULL
);
