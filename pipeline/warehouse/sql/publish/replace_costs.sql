-- A cost load: every stored row of the file's (date, site_id, source, medium, campaign)
-- keys is replaced by the file's rows, stamped $loaded_at; other campaigns of those dates
-- stay, as GA4's cost import does. The loader runs it in one transaction with
-- replaced_cost_groups.sql. Reads staged_costs, the validated file.
DELETE FROM marketing_costs AS m
WHERE EXISTS (
    SELECT 1 FROM staged_costs AS s
    WHERE s.date = m.date AND s.site_id = m.site_id AND s.source = m.source
        AND s.medium = m.medium AND s.campaign = m.campaign
);

INSERT INTO marketing_costs BY NAME
SELECT *, $loaded_at::TIMESTAMPTZ AS loaded_at FROM staged_costs;
