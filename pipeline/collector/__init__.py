"""The HTTP collector: ASGI app, one module per protocol, enrichment steps, Kafka sink."""
