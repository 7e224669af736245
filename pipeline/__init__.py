"""sessionflow: privacy-friendly session analytics (collector, Kafka, Parquet lake, DuckDB)."""
