"""The DuckDB warehouse: SQL models, build, publish, costs, read-only queries."""
