-- What a cost load is about to replace: the loaded file's (date, site_id, source, medium,
-- campaign) keys that already have rows in marketing_costs, and how many rows those hold.
-- Reads staged_costs, the validated file (pipeline/warehouse/cost_schema.py).
WITH file_keys AS (
    SELECT DISTINCT date, site_id, source, medium, campaign FROM staged_costs
),

stored AS (
    SELECT m.date, m.site_id, m.source, m.medium, m.campaign
    FROM marketing_costs AS m
    INNER JOIN file_keys AS k USING (date, site_id, source, medium, campaign)
)

SELECT
    (SELECT count(*) FROM (SELECT DISTINCT * FROM stored)) AS groups_replaced,
    (SELECT count(*) FROM stored) AS rows_deleted;
