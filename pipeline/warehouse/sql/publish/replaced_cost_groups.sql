-- What a cost load is about to replace: the loaded file's (date, site_id, source, medium)
-- groups that already have rows in marketing_costs, and how many rows those hold.
-- Reads staged_costs, the validated file (pipeline/warehouse/cost_schema.py).
WITH file_groups AS (
    SELECT DISTINCT date, site_id, source, medium FROM staged_costs
),

stored AS (
    SELECT m.date, m.site_id, m.source, m.medium
    FROM marketing_costs AS m
    INNER JOIN file_groups AS g USING (date, site_id, source, medium)
)

SELECT
    (SELECT count(*) FROM (SELECT DISTINCT * FROM stored)) AS groups_replaced,
    (SELECT count(*) FROM stored) AS rows_deleted;
