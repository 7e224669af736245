-- The loaded costs' date range per site (grain: site_id).
SELECT site_id, min(date) AS first_date, max(date) AS last_date, count(*) AS rows
FROM marketing_costs
GROUP BY site_id
ORDER BY site_id;
