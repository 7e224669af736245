"""Prefect flows: daily aggregation, backfill and cost loading run DuckDB SQL over the lake."""
