-- The distinct sessionization settings the built days were ingested under.
SELECT DISTINCT ingestion FROM build_manifest ORDER BY ingestion;
