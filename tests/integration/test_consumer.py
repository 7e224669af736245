"""The streaming consumer on the real broker: crashes, consumer groups, bad messages,
and agreement with the batch import."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipeline.config import Settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from tests.conftest import run_cli, settings_env

LATENESS_MINUTES = "180"  # the generator delivers late events up to 2 h behind


def cli_env(settings: Settings, data_dir: Path, **extra: str) -> dict[str, str]:
    defaults = {
        "SESSIONFLOW_DATA_DIR": str(data_dir),
        "SESSIONFLOW_KAFKA__PARTITIONS": "4",
        "SESSIONFLOW_SESSIONIZATION__ALLOWED_LATENESS_MINUTES": LATENESS_MINUTES,
        "SESSIONFLOW_CONSUMER__GROUP_ID": f"{settings.kafka.events_topic}.group",
    }
    return settings_env(settings, **{**defaults, **extra})


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(env, *args)


def spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *args],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip


def generated(tmp_path: Path, events_per_day: int, days: int = 2) -> Path:
    config = GeneratorConfig(days=days, start=date(2026, 11, 1), events_per_day=events_per_day)
    return write_dataset(config, tmp_path / "generated").events_path


def lake_files(data_dir: Path) -> set[Path]:
    return set((data_dir / "lake" / "events").glob("event_date=*/*.parquet"))


def lake_sessions(data_dir: Path) -> dict[str, str]:
    rows = duckdb.execute(
        "SELECT event_id, session_id FROM read_parquet(?, hive_partitioning = true)",
        [str(data_dir / "lake" / "events" / "event_date=*" / "*.parquet")],
    ).fetchall()
    mapping = dict(rows)
    assert len(mapping) == len(rows), "an event is in the lake more than once"
    return mapping


def test_two_consumers_in_a_group_equal_one(kafka_settings: Settings, tmp_path: Path) -> None:
    events_file = generated(tmp_path, events_per_day=15_000)
    pair = cli_env(
        kafka_settings, tmp_path / "pair",
        SESSIONFLOW_CONSUMER__CYCLE_MAX_SECONDS="1",
        SESSIONFLOW_CONSUMER__IDLE_RELEASE_SECONDS="3",
    )  # fmt: skip
    assert cli(pair, "produce", "--file", str(events_file)).returncode == 0
    first = spawn(pair, tmp_path / "a.log", "consume", "--instance-id", "a")
    second = spawn(pair, tmp_path / "b.log", "consume", "--instance-id", "b")
    try:
        deadline = time.monotonic() + 180
        expected = len({json.loads(line)["event_id"] for line in events_file.open()})
        while time.monotonic() < deadline:
            time.sleep(2)
            try:
                if len(lake_sessions(tmp_path / "pair")) == expected:
                    break
            except duckdb.IOException:
                continue  # no files yet
    finally:
        for process in (first, second):
            process.send_signal(signal.SIGTERM)
        for process in (first, second):
            process.wait(timeout=60)
    # Both members took part: each logged the partitions it owned.
    for name in ("a", "b"):
        assert "consumed" in (tmp_path / f"{name}.log").read_text()
    single = cli_env(kafka_settings, tmp_path / "single", SESSIONFLOW_CONSUMER__GROUP_ID="single")
    finished = cli(single, "consume", "--until-caught-up", "--instance-id", "solo")
    assert finished.returncode == 0, finished.stderr
    assert lake_sessions(tmp_path / "pair") == lake_sessions(tmp_path / "single")


def test_bad_messages_go_to_the_dead_letter_topic_and_the_rest_lands(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(kafka_settings, tmp_path / "data")
    assert cli(env, "topics").returncode == 0
    good = {
        "event_id": "ok-1", "event_name": "page_view", "event_ts": "2026-11-01T10:00:00Z",
        "site_id": "shop.example", "visitor_id": "v1",
    }  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka.bootstrap)
    topic = kafka_settings.kafka.events_topic
    for value in (
        json.dumps(good).encode(),
        b"{not json",
        json.dumps({**good, "event_id": "bad-1", "currency": "usd"}).encode(),
        json.dumps(
            {**good, "event_id": "bad-2", "page_url": "https://x/?e=jane@example.com", "value": "x"}
        ).encode(),
        json.dumps({**good, "event_id": "ok-2"}).encode(),
    ):
        producer.send(topic, key=b"shop.example/v1", value=value)
    producer.flush()
    producer.close()

    result = cli(env, "consume", "--until-caught-up", "--instance-id", "dlq")
    assert result.returncode == 0, result.stderr
    assert "3 rejected" in result.stdout
    assert set(lake_sessions(tmp_path / "data")) == {"ok-1", "ok-2"}

    dead = KafkaConsumer(
        bootstrap_servers=kafka_settings.kafka.bootstrap, auto_offset_reset="earliest"
    )
    dlq = TopicPartition(kafka_settings.kafka.dlq_topic, 0)
    dead.assign([dlq])
    letters = [
        json.loads(r.value) for batch in [dead.poll(timeout_ms=5000)] for r in batch.get(dlq, [])
    ]
    dead.close()
    assert sorted(letter["reason"] for letter in letters) == [
        "bad_currency",
        "bad_json",
        "wrong_type",
    ]
    assert all(letter["source"].startswith(f"{topic}/") for letter in letters)
    assert not any("jane@example.com" in json.dumps(letter) for letter in letters)
    rejected = duckdb.execute(
        "SELECT reason, payload FROM read_parquet(?)",
        [str(tmp_path / "data" / "lake" / "rejected" / "*" / "*.parquet")],
    ).fetchall()
    assert sorted(reason for reason, _ in rejected) == ["bad_currency", "bad_json", "wrong_type"]
    assert not any("jane@example.com" in payload for _, payload in rejected)


def test_a_cycle_that_only_releases_held_events_is_not_overwritten_by_the_next(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """A quiet partition's held events are released by a cycle that reads no record, at
    the same offset as the next cycle: both cycles' files must stay (they once shared a
    name, and the second overwrote the first)."""
    env = cli_env(
        kafka_settings, tmp_path / "data",
        SESSIONFLOW_SESSIONIZATION__ALLOWED_LATENESS_MINUTES="0",
        SESSIONFLOW_CONSUMER__IDLE_RELEASE_SECONDS="1",
        SESSIONFLOW_CONSUMER__CYCLE_MAX_SECONDS="0.5",
    )  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka.bootstrap, acks="all")
    topic = kafka_settings.kafka.events_topic

    def send(batch: str) -> set[str]:
        ids = [f"{batch}-{i}-{time.monotonic_ns()}" for i in range(5)]
        now = int(time.time() * 1_000_000)
        # Rising times: a cycle writes the first four and holds the last (the newest, at
        # the watermark) until the quiet partition's release.
        for i, event_id in enumerate(ids):
            event = {
                "event_id": event_id, "event_name": "page_view", "event_ts": now + i * 1000,
                "site_id": "shop.example", "visitor_id": "v1",
            }  # fmt: skip
            # One key, so one partition: the second batch lands where the first was held.
            producer.send(topic, key=b"shop.example/v1", value=json.dumps(event).encode())
        producer.flush(timeout=30)
        return set(ids)

    def lake_holds(ids: set[str], deadline_s: float = 120) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if lake_files(tmp_path / "data") and ids <= set(lake_sessions(tmp_path / "data")):
                return True
            time.sleep(0.1)  # polling interval of a condition
        return False

    consumer = spawn(env, tmp_path / "consumer.log", "consume", "--instance-id", "quiet")
    try:
        first = send("a")
        assert lake_holds(first), (tmp_path / "consumer.log").read_text()[-2000:]
        second = send("b")
        assert lake_holds(first | second), (tmp_path / "consumer.log").read_text()[-2000:]
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=60)
        producer.close(timeout=5)
    assert set(lake_sessions(tmp_path / "data")) == first | second
