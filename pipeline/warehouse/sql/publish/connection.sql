-- Connection settings for a build. Timestamps leave DuckDB (Arrow, Parquet marts) in UTC,
-- whatever the machine's zone: local dates are always computed explicitly with $timezone.
SET TimeZone = 'UTC';
