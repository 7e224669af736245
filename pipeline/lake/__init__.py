"""The Parquet lake: paths, the shared processing path, consumer, state, import, compaction."""
