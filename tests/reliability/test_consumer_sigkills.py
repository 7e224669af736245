"""Consumer SIGKILLs at random points and during a rebalance of two consumers in a group.

Each test produces one stream, kills consumers on it, lets consumers finish, and holds the
streamed lake against an uninterrupted `import` of the same file: every event exactly once
(0 lost, 0 doubled), in the same session. Kills land through the fault hook
(pipeline.faults: a random pass of a cycle point, or the rebalance listener) or from
outside at a random moment after the run has made progress (an offset commit).
Each test prints one summary line (`pytest -s`) for the suite's closing table.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from pipeline.config import FAULT_ENV, Settings, load_settings
from pipeline.faults import CONSUMER_POINTS
from pipeline.kafka.produce import produce_events
from pipeline.kafka.topics import ensure_topics
from pipeline.lake.importer import import_file
from tests.integration.test_consumer import cli, cli_env, generated, spawn

RANDOM_KILLS = 16
RANDOM_SEED = 14  # the points and counts are reproducible; the timed kills' moments are not
EXIT_DEADLINE_S = 120.0  # a consumer run on these small streams ends well within this
PROGRESS_DEADLINE_S = 120.0
# The broker's minimum: a killed member holds its partitions this long before the group
# gives them to the others (kafka-python's default would wait 15 s per kill).
SESSION_TIMEOUT_MS = "6000"


@dataclass(frozen=True)
class Tally:
    """The streamed lake counted against the produced file and the batch reference."""

    produced: int  # records produced (the generator's deliberate duplicates included)
    unique: int  # distinct event ids produced
    landed: int  # rows in the streamed lake
    lost: int  # produced ids missing from the lake
    doubled: int  # rows beyond one per id, and ids that were never produced
    other_session: int  # events whose session differs from the uninterrupted import's

    def line(self, test: str, kills: int) -> str:
        return (
            f"{test}: {kills} SIGKILLs, {self.produced} events produced "
            f"({self.unique} distinct), {self.landed} landed, {self.lost} lost, "
            f"{self.doubled} doubled, {self.other_session} in another session than the import"
        )


def lake_rows(data_dir: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = duckdb.execute(
        "SELECT event_id, session_id FROM read_parquet(?, hive_partitioning = true)",
        [str(data_dir / "lake" / "events" / "event_date=*" / "*.parquet")],
    ).fetchall()
    return rows


def tally(events_file: Path, streamed: Path, reference: Path) -> Tally:
    produced_ids = [json.loads(line)["event_id"] for line in events_file.open()]
    unique = set(produced_ids)
    rows = lake_rows(streamed)
    sessions = dict(rows)
    batch = dict(lake_rows(reference))
    assert set(batch) == unique, "the reference import itself is incomplete"
    return Tally(
        produced=len(produced_ids),
        unique=len(unique),
        landed=len(rows),
        lost=len(unique - sessions.keys()),
        doubled=len(rows) - len(sessions) + len(sessions.keys() - unique),
        other_session=sum(sessions.get(event_id) != batch[event_id] for event_id in unique),
    )


def check_against_import(
    settings: Settings, tmp_path: Path, events_file: Path, test: str, kills: int
) -> None:
    # In this process: a command's start-up (~3 s on a loaded machine) buys nothing here.
    reference = load_settings(environ=cli_env(settings, tmp_path / "batch"))
    report = import_file(reference, events_file, lambda _: None)
    assert report.rejected == 0, report
    counted = tally(events_file, tmp_path / "streamed", tmp_path / "batch")
    print(counted.line(test, kills))
    assert counted.lost == 0 and counted.doubled == 0, counted
    assert counted.other_session == 0, counted


def exit_status(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return process.wait(timeout=EXIT_DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"still running after {EXIT_DEADLINE_S} s:\n{tail(log)}") from None


def tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])


def produce_lines(settings: Settings, lines: list[bytes]) -> None:
    """Produce `lines` (JSON Lines of the generated file) as `sessionflow produce` does."""
    report = produce_events(settings, enumerate(lines, start=1), lambda _: None)
    assert report.rejected == 0 and report.produced == len(lines), report.line()


def committed_total(admin: KafkaAdminClient, group: str) -> int:
    """The sum of the group's committed offsets: it grows with every finished cycle."""
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    while True:
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        except KafkaError as exc:  # e.g. the group's coordinator is still loading
            if not exc.retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # retry interval of a retriable broker answer
            continue
        return sum(meta.offset for meta in offsets.values() if meta.offset >= 0)


def wait_for_commit(
    process: subprocess.Popen[bytes], admin: KafkaAdminClient, group: str, before: int
) -> None:
    """Until the group's committed offsets pass `before` (this run finished a cycle of its
    own). Fails if the process ends first, or past the deadline."""
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the consumer ended ({process.returncode}) first"
        if committed_total(admin, group) > before:
            return
        time.sleep(0.02)  # polling interval of a condition
    raise AssertionError(f"no offset commit within {PROGRESS_DEADLINE_S} s")


def test_sixteen_sigkills_at_random_points_of_a_live_stream(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """A stream produced in 16 parts, one per consumer run; each run is killed. Half the
    kills at a random pass (1 to 3) of a random cycle point, through the fault hook; half
    from outside at a random moment once the run has committed a cycle of its own."""
    events_file = generated(tmp_path, events_per_day=4_000)
    lines = [line for line in events_file.read_bytes().splitlines(keepends=True) if line.strip()]
    streamed = tmp_path / "streamed"
    env = cli_env(
        kafka_settings, streamed,
        SESSIONFLOW_CONSUMER__CYCLE_MAX_EVENTS="100",
        SESSIONFLOW_CONSUMER__CYCLE_MAX_SECONDS="0.2",
    )  # fmt: skip
    settings = load_settings(environ=env)
    ensure_topics(settings.kafka)
    group = env["SESSIONFLOW_CONSUMER__GROUP_ID"]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)

    rng = random.Random(RANDOM_SEED)
    log = tmp_path / "killed.log"
    part = -(-len(lines) // RANDOM_KILLS)  # ceiling: 16 parts cover every line
    # Static membership: each restart takes over the killed member's place at once
    # instead of waiting for its session to expire. No --until-caught-up: a run never
    # ends by itself, so every kill lands.
    args = ("consume", "--instance-id", "crashy")
    consumer = None
    try:
        for kill in range(RANDOM_KILLS):
            # Each run finds new events (and the cycle its predecessor left unfinished).
            produce_lines(settings, lines[kill * part : (kill + 1) * part])
            if kill % 2 == 0:
                # A part spreads over all 4 partitions: at least 4 cycles, so 3 passes.
                fault = f"{rng.choice(CONSUMER_POINTS)}:{rng.randint(1, 3)}"
                consumer = spawn({**env, FAULT_ENV: fault}, log, *args)
            else:
                consumer = spawn(env, log, *args)
                wait_for_commit(consumer, admin, group, committed_total(admin, group))
                # A random moment of what follows: no synchronisation is wanted.
                time.sleep(rng.uniform(0.0, 0.3))
                consumer.send_signal(signal.SIGKILL)
                fault = "a random moment"
            status = exit_status(consumer, log)
            assert status == -signal.SIGKILL, f"kill {kill + 1} ({fault}): {status}\n{tail(log)}"
    finally:
        stop_all(consumer)
        admin.close()

    finished = cli(env, "consume", "--until-caught-up", "--instance-id", "crashy")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    check_against_import(kafka_settings, tmp_path, events_file, "random points", kills=RANDOM_KILLS)


@dataclass
class Rebalancing:
    """A stream in two halves for a group of two: the first half before consumer A
    starts, the second as B joins, so that the group rebalances with work in flight."""

    env: dict[str, str]
    settings: Settings
    halves: tuple[list[bytes], list[bytes]]
    admin: KafkaAdminClient

    @property
    def group(self) -> str:
        return self.env["SESSIONFLOW_CONSUMER__GROUP_ID"]

    def start_first(self, log: Path, **fault: str) -> subprocess.Popen[bytes]:
        """A, dynamic member, running until stopped; returned once it committed a cycle."""
        produce_lines(self.settings, self.halves[0])
        first = spawn({**self.env, **fault}, log, "consume")
        try:
            wait_for_commit(first, self.admin, self.group, 0)
        except BaseException:
            stop_all(first)  # not the test's yet: its clean-up cannot reach it
            raise
        return first

    def join_second(self, log: Path, *args: str, **fault: str) -> subprocess.Popen[bytes]:
        second = spawn({**self.env, **fault}, log, "consume", *args)
        try:
            produce_lines(self.settings, self.halves[1])
        except BaseException:
            stop_all(second)
            raise
        return second


def rebalancing(settings: Settings, tmp_path: Path) -> tuple[Rebalancing, Path]:
    events_file = generated(tmp_path, events_per_day=5_000)
    lines = [line for line in events_file.read_bytes().splitlines(keepends=True) if line.strip()]
    env = cli_env(
        settings, tmp_path / "streamed",
        SESSIONFLOW_CONSUMER__CYCLE_MAX_EVENTS="500",
        SESSIONFLOW_CONSUMER__CYCLE_MAX_SECONDS="0.5",
        SESSIONFLOW_CONSUMER__SESSION_TIMEOUT_MS=SESSION_TIMEOUT_MS,
    )  # fmt: skip
    pointed = load_settings(environ=env)
    ensure_topics(pointed.kafka)
    half = len(lines) // 2
    admin = KafkaAdminClient(bootstrap_servers=pointed.kafka.bootstrap)
    return Rebalancing(env, pointed, (lines[:half], lines[half:]), admin), events_file


def stop_all(*processes: subprocess.Popen[bytes] | None) -> None:
    """Kill what a failed test left running."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def test_killed_while_giving_up_partitions_to_a_joining_consumer(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Consumer A is killed in its rebalance listener, as it gives up its partitions
    because B joins the group; B, the survivor, takes all of them over and finishes."""
    pair, events_file = rebalancing(kafka_settings, tmp_path)
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    first = second = None
    try:
        # A runs without --until-caught-up: the only revocation it can see is B's joining.
        first = pair.start_first(a_log, **{FAULT_ENV: "on_revoke:1"})
        second = pair.join_second(b_log, "--until-caught-up")
        assert exit_status(first, a_log) == -signal.SIGKILL, tail(a_log)
        assert exit_status(second, b_log) == 0, tail(b_log)
    finally:
        stop_all(first, second)
        pair.admin.close()
    check_against_import(kafka_settings, tmp_path, events_file, "killed at revoke", kills=1)


def test_joining_consumer_killed_at_its_assignment(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """B joins while A consumes and is killed as soon as it is handed its partitions: they
    belong to a dead member until its session expires. B is restarted; both finish."""
    pair, events_file = rebalancing(kafka_settings, tmp_path)
    a_log, b_log, b2_log = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "b2.log"
    first = second = restarted = None
    try:
        # A runs until stopped: it must still be a member when B joins, however fast.
        first = pair.start_first(a_log)
        second = pair.join_second(b_log, **{FAULT_ENV: "on_assign:1"})
        assert exit_status(second, b_log) == -signal.SIGKILL, tail(b_log)
        assert first.poll() is None, f"A ended during the rebalance\n{tail(a_log)}"
        restarted = spawn(pair.env, b2_log, "consume", "--until-caught-up")
        assert exit_status(restarted, b2_log) == 0, tail(b2_log)
        # B's restart finished its share; A is stopped gracefully (it flushes its cycle),
        # and a last run closes the sessions A still held open.
        first.send_signal(signal.SIGTERM)
        assert exit_status(first, a_log) == 0, tail(a_log)
    finally:
        stop_all(first, second, restarted)
        pair.admin.close()
    finished = cli(pair.env, "consume", "--until-caught-up")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    check_against_import(kafka_settings, tmp_path, events_file, "killed at assign", kills=1)
