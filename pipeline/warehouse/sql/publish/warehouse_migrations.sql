-- Migrations of warehouses made by earlier releases, applied once per warehouse (and
-- again only when this file changes: pipeline.warehouse.build.apply_migrations records
-- its digest in warehouse_migrations). Every statement is safe to run on a warehouse
-- that already has it, or that was created with today's tables.

-- Columns added since the first release, for warehouses created before them (appended
-- last, as in the definitions of publish/warehouse_tables.sql; rows of days built before
-- stay NULL until rebuilt, and the changed models make every built day stale).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS engagement_time_s DOUBLE;
ALTER TABLE daily_sessions ADD COLUMN IF NOT EXISTS engagement_time_s DOUBLE;
ALTER TABLE daily_sessions ADD COLUMN IF NOT EXISTS avg_engagement_time_s DOUBLE;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS engagement_time_s DOUBLE;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS avg_engagement_time_s DOUBLE;
-- Refunds arrived with net_revenue: days built before had none, so their net revenue is
-- their revenue (the UPDATEs touch only rows of those days, once).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS refunds DECIMAL(18, 4) DEFAULT 0;
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS net_revenue DECIMAL(18, 4);
UPDATE sessions SET net_revenue = revenue WHERE net_revenue IS NULL;
ALTER TABLE daily_sessions ADD COLUMN IF NOT EXISTS refunds DECIMAL(18, 4) DEFAULT 0;
ALTER TABLE daily_sessions ADD COLUMN IF NOT EXISTS net_revenue DECIMAL(18, 4);
UPDATE daily_sessions SET net_revenue = revenue WHERE net_revenue IS NULL;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS refunds DECIMAL(18, 4) DEFAULT 0;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS net_revenue DECIMAL(18, 4);
UPDATE daily_site_summary SET net_revenue = revenue WHERE net_revenue IS NULL;
-- Per-site currencies: days built before hold no currency until rebuilt (the changed
-- models make them stale).
ALTER TABLE sessions ADD COLUMN IF NOT EXISTS currency VARCHAR;
ALTER TABLE daily_sessions ADD COLUMN IF NOT EXISTS currency VARCHAR;
ALTER TABLE daily_cost_per_session ADD COLUMN IF NOT EXISTS currency VARCHAR;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS currency VARCHAR;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS reporting_currency VARCHAR;
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS revenue_reporting DECIMAL(18, 4);
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS conversion_value_reporting DECIMAL(18, 4);
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS cost_reporting DECIMAL(18, 4);
ALTER TABLE daily_site_summary ADD COLUMN IF NOT EXISTS net_revenue_reporting DECIMAL(18, 4);
-- session_identity (whether a session had a stable id) became session_users (who its
-- user is). The days built before keep their users, under the rule of then: the visitor
-- id of a session with a client session id or a user_id. Then it goes; for a warehouse
-- that never had it, these three statements do nothing.
CREATE TABLE IF NOT EXISTS session_identity (
    session_date DATE NOT NULL,
    session_id VARCHAR NOT NULL,
    stable_id BOOLEAN NOT NULL
);
INSERT INTO session_users
SELECT i.session_date, i.session_id, s.site_id, s.visitor_id
FROM session_identity AS i
INNER JOIN sessions AS s USING (session_date, session_id)
WHERE i.stable_id
    AND NOT EXISTS (
        SELECT 1 FROM session_users AS u
        WHERE u.session_date = i.session_date AND u.session_id = i.session_id
    );
DROP TABLE session_identity;
