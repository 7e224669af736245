-- A digest of stg_touches' rows, in any order (one row): what the build manifest records
-- of the touches a day's attribution took.
SELECT CAST(
    coalesce(
        bit_xor(hash(site_id, attribution_user, session_start, source, medium, campaign,
            channel_group)),
        0
    ) AS VARCHAR
) || ':' || CAST(count(*) AS VARCHAR) AS digest
FROM stg_touches;
