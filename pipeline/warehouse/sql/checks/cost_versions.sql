-- The version of each date's marketing costs (grain: date): how many rows, their total
-- and the newest load stamp. Any load or replacement touching a date changes it.
SELECT
    date,
    count(*) AS rows,
    CAST(sum(cost) AS VARCHAR) AS total,
    CAST(epoch_us(max(loaded_at)) AS VARCHAR) AS loaded
FROM marketing_costs
GROUP BY date
ORDER BY date;
