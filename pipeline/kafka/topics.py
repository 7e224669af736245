"""Idempotent set-up of sessionflow's Kafka topics, with kafka-python's admin client.

- Missing topics are created with the configured partitions, replication and retention.
- An existing topic's retention follows the config (a safe, reversible change).
- An existing topic's partition count is never changed here: adding partitions remaps
  visitor keys to other partitions, which splits live sessions. A mismatch is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from pipeline.config import KafkaSettings
from pipeline.errors import BrokerError
from pipeline.kafka.client import client_options

TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    retention_ms: int

    @property
    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms)}


@dataclass(frozen=True)
class TopicReport:
    name: str
    created: bool
    partitions: int
    retention_ms: int
    notes: tuple[str, ...] = ()

    def line(self) -> str:
        action = "created" if self.created else "exists"
        hours = self.retention_ms / HOUR_MS
        text = f"topic {self.name}: {action}, {self.partitions} partitions, retention {hours:g} h"
        return "; ".join((text, *self.notes))


def topic_specs(kafka: KafkaSettings) -> list[TopicSpec]:
    return [
        TopicSpec(
            kafka.events_topic, kafka.partitions, kafka.replication_factor,
            kafka.retention_hours * HOUR_MS,
        ),
        TopicSpec(
            kafka.dlq_topic, kafka.dlq_partitions, kafka.replication_factor,
            kafka.dlq_retention_hours * HOUR_MS,
        ),
    ]  # fmt: skip


def ensure_topics(kafka: KafkaSettings, connect_timeout_s: float = 30.0) -> list[TopicReport]:
    """Create the events and dead-letter topics if missing; safe to run any number of times."""
    specs = topic_specs(kafka)
    try:
        admin = KafkaAdminClient(
            **client_options(kafka),
            client_id="sessionflow-admin",
            bootstrap_timeout_ms=int(connect_timeout_s * 1000),
        )
    except Exception as exc:
        hint = (
            " (check security_protocol, the CA and the SASL user and password)"
            if kafka.security_protocol != "PLAINTEXT"
            else ""
        )
        raise BrokerError(f"cannot reach Kafka at {kafka.bootstrap}: {exc}{hint}") from None
    try:
        created = _create_missing(admin, specs)
        return [_reconcile(admin, spec, created=spec.name in created) for spec in specs]
    finally:
        admin.close()


def _create_missing(admin: KafkaAdminClient, specs: list[TopicSpec]) -> set[str]:
    response = admin.create_topics(
        {
            spec.name: {
                "num_partitions": spec.partitions,
                "replication_factor": spec.replication_factor,
                "configs": spec.configs,
            }
            for spec in specs
        },
        raise_errors=False,
        wait_for_metadata=True,
    )
    created: set[str] = set()
    for topic in response["topics"]:
        if topic["error_code"] == 0:
            created.add(topic["name"])
        elif topic["error_code"] != TOPIC_ALREADY_EXISTS:
            raise BrokerError(f"creating topic {topic['name']} failed: {topic['error_message']}")
    return created


def _reconcile(admin: KafkaAdminClient, spec: TopicSpec, *, created: bool) -> TopicReport:
    (described,) = admin.describe_topics([spec.name])
    partitions = len(described["partitions"])
    notes: list[str] = []
    if partitions != spec.partitions:
        notes.append(
            f"config asks for {spec.partitions} partitions; not changed automatically "
            "because that remaps visitor keys (alter it deliberately with Kafka's tools)"
        )
    resource = ConfigResource(ConfigResourceType.TOPIC, spec.name, ["retention.ms"])
    current = admin.describe_configs([resource], config_filter="all")["topic"][spec.name]
    retention_ms = int(current["retention.ms"]["value"])
    if retention_ms != spec.retention_ms:
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name, spec.configs)], incremental=True
        )
        notes.append(f"retention changed from {retention_ms / HOUR_MS:g} h to match config")
        retention_ms = spec.retention_ms
    return TopicReport(spec.name, created, partitions, retention_ms, tuple(notes))
