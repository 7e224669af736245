-- Connection settings for a build. Timestamps leave DuckDB (Arrow, Parquet marts) in UTC,
-- whatever the machine's zone: local dates are always computed explicitly, in each site's
-- time zone.
SET TimeZone = 'UTC';
