"""Kafka at the edges: the producer SDK, topics, producing files, the local broker."""
