-- The lake's partitions summarised at session and transaction grain, so a day's build
-- reads these instead of the raw events of the days around it (the attribution look-back,
-- transaction de-duplication, which sessions had already started). Each partition's rows
-- are a pure function of its lake files (sql/summaries/), replaced whenever its files'
-- fingerprint changes (pipeline/warehouse/summaries.py): a cache of the lake, never a
-- source of truth, so dropping these tables only costs their rebuild.

-- lake_partitions: one row per summarised partition (grain: event_date): the fingerprint
-- of the files it was summarised from (pipeline.warehouse.manifest.partition_fingerprint).
CREATE TABLE IF NOT EXISTS lake_partitions (
    event_date DATE PRIMARY KEY,
    files VARCHAR NOT NULL
);

-- lake_partition_sessions: grain event_date x session_id: the part of a session whose
-- events fall on that partition.
CREATE TABLE IF NOT EXISTS lake_partition_sessions (
    event_date DATE NOT NULL,
    session_id VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    visitor_id VARCHAR,
    first_ts TIMESTAMPTZ,         -- its first event that is not an engagement signal
    first_event_id VARCHAR,
    last_ts TIMESTAMPTZ NOT NULL, -- its last event, engagement signals included
    source VARCHAR,               -- the first event's (GA4: a session's source is its first event's)
    medium VARCHAR,
    campaign VARCHAR,
    channel_group VARCHAR,
    user_id VARCHAR,              -- the first user_id sent (not by an engagement signal)
    user_ts TIMESTAMPTZ,
    user_event_id VARCHAR,
    stable_client BOOLEAN NOT NULL -- a GA4 client id (see session_facts.sql, user_key)
);

-- lake_partition_transactions: grain event_date x site_id x transaction_id: the purchase
-- that would count the transaction among that partition's (authenticated first, then by
-- event_ts, event_id), its amount as sent.
CREATE TABLE IF NOT EXISTS lake_partition_transactions (
    event_date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    transaction_id VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    event_ts TIMESTAMPTZ NOT NULL,
    is_anonymous BOOLEAN NOT NULL,
    value DOUBLE,
    currency VARCHAR
);

-- lake_partition_refunds: grain event_date x site_id x event_id: each refund naming a
-- transaction, its amount as sent.
CREATE TABLE IF NOT EXISTS lake_partition_refunds (
    event_date DATE NOT NULL,
    site_id VARCHAR NOT NULL,
    event_id VARCHAR NOT NULL,
    transaction_id VARCHAR NOT NULL,
    event_ts TIMESTAMPTZ NOT NULL,
    is_anonymous BOOLEAN NOT NULL,
    value DOUBLE,
    currency VARCHAR
);

-- lake_session_touches: grain session_id: each session whose first event is not direct,
-- its parts on every summarised partition combined (whole sessions, not parts): its
-- start and first touch, and its attribution user (its first user_id, else its visitor
-- id). What the attribution look-back reads (stg_touches), kept up to date with the
-- partitions (publish/store_summaries.sql).
CREATE TABLE IF NOT EXISTS lake_session_touches (
    session_id VARCHAR NOT NULL,
    site_id VARCHAR NOT NULL,
    attribution_user VARCHAR NOT NULL,
    session_start TIMESTAMPTZ NOT NULL,
    source VARCHAR,
    medium VARCHAR,
    campaign VARCHAR,
    channel_group VARCHAR NOT NULL
);
