"""Disk faults: the lake or the marts become unwritable (EROFS), or the disk fills (ENOSPC).

Each directory sits on a small tmpfs of its own (tests/reliability/disk.py). The consumer
must stop with one line, no traceback, exit 1, having committed no offset that its lake
files and snapshot do not cover; fixed, it resumes and ends with every event once, in the
sessions an uninterrupted import gives. A build must leave the day's previous marts as
they were, not record the day as built, and, fixed, give the rows of an uninterrupted
build.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
from kafka import KafkaConsumer, TopicPartition

from pipeline.config import FAULT_ENV, Settings, load_settings
from pipeline.lake.state import PartitionStore
from pipeline.warehouse.build import open_warehouse
from pipeline.warehouse.manifest import COSTS_CHANGED, plan_days
from tests.conftest import clean_env, run_cli
from tests.integration.test_consumer import cli, cli_env, generated, lake_sessions
from tests.reliability.disk import BALLAST, SmallDisk, small_disk, staging_files

DISK_BYTES = 64 << 20
EXIT_ERROR = 1  # README, exit codes: "an error, said in one line"


def assert_one_line_error(result: subprocess.CompletedProcess[str], *reasons: str) -> str:
    """The command failed with exit 1 and one `Error: ...` line naming one of `reasons`,
    and no traceback anywhere in its output."""
    output = result.stdout + result.stderr
    assert result.returncode == EXIT_ERROR, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert any(reason in errors[0] for reason in reasons), errors[0]
    return errors[0]


# -- the consumer -------------------------------------------------------------------------


@dataclass
class Stream:
    """What was produced, per event id: the topic's partitions and offsets it is at."""

    file: Path
    unique_ids: set[str]
    records: list[tuple[int, int, str]]  # (partition, offset, event_id) of every record


def produce(env: dict[str, str], settings: Settings, events_file: Path) -> Stream:
    produced = cli(env, "produce", "--file", str(events_file))
    assert produced.returncode == 0, produced.stdout + produced.stderr
    topic = settings.kafka.events_topic
    reader = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic))]
    reader.assign(partitions)
    reader.seek_to_beginning()
    ends = reader.end_offsets(partitions)
    records: list[tuple[int, int, str]] = []
    deadline = time.monotonic() + 120
    while any(reader.position(tp) < ends[tp] for tp in partitions):
        assert time.monotonic() < deadline, "the topic could not be read back in 120 s"
        for tp, batch in reader.poll(timeout_ms=1000).items():
            records += [(tp.partition, r.offset, json.loads(r.value)["event_id"]) for r in batch]
    reader.close()
    unique_ids = {json.loads(line)["event_id"] for line in events_file.open()}
    assert {event_id for _, _, event_id in records} == unique_ids
    return Stream(events_file, unique_ids, records)


def committed_offsets(settings: Settings, group: str) -> dict[int, int]:
    """The group's committed offset per partition (partitions without one left out)."""
    topic = settings.kafka.events_topic
    reader = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap, group_id=group, enable_auto_commit=False
    )
    try:  # never subscribes: asks the coordinator, joins no group
        partitions = sorted(reader.partitions_for_topic(topic) or set())
        offsets = {p: reader.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        reader.close(autocommit=False)
    return {p: offset for p, offset in offsets.items() if offset is not None}


def assert_commits_covered(
    settings: Settings, env: dict[str, str], stream: Stream
) -> dict[int, int]:
    """No committed offset past what the consumer made durable: every event below a
    partition's committed offset is in a finished lake file or pending in its snapshot,
    and no snapshot is behind its commit. Returns the committed offsets."""
    group = env["SESSIONFLOW_CONSUMER__GROUP_ID"]
    data_dir = Path(env["SESSIONFLOW_DATA_DIR"])
    committed = committed_offsets(settings, group)
    state_dir = data_dir / "consumer-state" / group / settings.kafka.events_topic
    durable: set[str] = set()
    unfinished: set[str] = set()  # files of a cycle without a snapshot: undone on restart
    for partition, offset in committed.items():
        store = PartitionStore(state_dir / f"p{partition:03d}")
        state = store.load()
        assert state is not None, f"partition {partition} committed {offset} without a snapshot"
        assert offset <= state.next_offset, (partition, offset, state.next_offset)
        pending = state.sessionizer.release(final=True)
        if pending is not None:
            durable.update(pending["event_id"].to_pylist())
        if store.manifest_path.exists():
            unfinished.update(json.loads(store.manifest_path.read_text())["files"])
    lake = [
        str(path)
        for path in (data_dir / "lake" / "events").glob("event_date=*/*.parquet")
        if str(path) not in unfinished
    ]
    if lake:
        rows = duckdb.execute("SELECT event_id FROM read_parquet(?::VARCHAR[])", [lake]).fetchall()
        durable.update(event_id for (event_id,) in rows)
    below = {
        event_id
        for partition, offset, event_id in stream.records
        if offset < committed.get(partition, 0)
    }
    missing = below - durable
    assert not missing, f"{len(missing)} events below a committed offset are nowhere durable"
    return committed


def assert_exactly_once(tmp_path: Path, streamed_dir: Path, stream: Stream) -> tuple[int, int]:
    """Every event once, in the sessions of an uninterrupted import; (landed, doubled)."""
    (rows,) = duckdb.execute(
        "SELECT count(*) FROM read_parquet(?)",
        [str(streamed_dir / "lake" / "events" / "event_date=*" / "*.parquet")],
    ).fetchall()[0]
    streamed = lake_sessions(streamed_dir)  # asserts no event twice
    assert set(streamed) == stream.unique_ids
    assert streamed == lake_sessions(tmp_path / "batch")
    return len(streamed), rows - len(streamed)


def import_reference(settings: Settings, tmp_path: Path, events_file: Path) -> int:
    """An uninterrupted import of the same file; returns its lake's bytes."""
    imported = cli(cli_env(settings, tmp_path / "batch"), "import", str(events_file))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    files = (tmp_path / "batch" / "lake" / "events").glob("event_date=*/*.parquet")
    return sum(path.stat().st_size for path in files)


def consume(env: dict[str, str], disk: SmallDisk) -> subprocess.CompletedProcess[str]:
    return cli({**env, **disk.env()}, "consume", "--until-caught-up", "--instance-id", "disk")


def consume_fails(
    env: dict[str, str], disk: SmallDisk, settings: Settings, stream: Stream, reason: str
) -> dict[int, int]:
    """A consumer run that meets the fault: one line naming `reason`, no staging files
    left, no offset committed past what it made durable. Returns the committed offsets."""
    failed = consume(env, disk)
    line = assert_one_line_error(failed, reason)
    assert "consume stopped without committing" in line, line
    print(f"[disk] consumer: {line}")
    assert staging_files(Path(env["SESSIONFLOW_DATA_DIR"]) / "lake") == []
    committed = assert_commits_covered(settings, env, stream)
    landed = len(lake_sessions(Path(env["SESSIONFLOW_DATA_DIR"])))
    print(f"[disk] at the fault: committed {committed}, {landed} events in the lake")
    assert landed < len(stream.unique_ids)  # it did stop mid-stream
    return committed


def test_consumer_stops_on_a_bad_lake_disk_and_resumes_exactly_once(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """One stream through three consumer lives: killed part-way (a committed history),
    restarted onto a read-only lake, then onto a lake disk with room for about half the
    stream, then on a fixed disk."""
    began = time.monotonic()
    events_file = generated(tmp_path, events_per_day=10_000)
    env = cli_env(
        kafka_settings, tmp_path / "streamed", SESSIONFLOW_CONSUMER__CYCLE_MAX_EVENTS="1000"
    )
    stream = produce(env, kafka_settings, events_file)
    reference_bytes = import_reference(kafka_settings, tmp_path, events_file)
    with small_disk(tmp_path / "streamed" / "lake", DISK_BYTES) as disk:
        # Part of the stream first, committed: a consumer killed after its second snapshot
        # (pipeline.faults), restarted onto a lake that is now read-only.
        killed = cli({**env, FAULT_ENV: "after_snapshot:2"}, "consume", "--until-caught-up")
        assert killed.returncode < 0, killed.stdout + killed.stderr
        disk.unwritable()
        after_erofs = consume_fails(env, disk, kafka_settings, stream, "[EROFS]")
        # Restarted onto the still read-only lake: the stopped cycle's files cannot be
        # undone; the same one-line stop, and nothing more committed.
        assert consume_fails(env, disk, kafka_settings, stream, "[EROFS]") == after_erofs

        # Writable again, but with room for about half the stream: it writes and commits
        # more cycles, then the disk fills.
        disk.writable()
        left = disk.fill(reference_bytes // 2)
        print(f"[disk] lake: {left} bytes free for a stream of ~{reference_bytes} bytes")
        after_enospc = consume_fails(env, disk, kafka_settings, stream, "[ENOSPC]")
        assert sum(after_enospc.values()) > sum(after_erofs.values()), "no cycle fitted"

        # Fixed: the same consumer group resumes and finishes.
        disk.free()
        finished = consume(env, disk)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        landed, doubled = assert_exactly_once(tmp_path, tmp_path / "streamed", stream)
    print(
        f"[disk] consumer ({disk.mode}): faults EROFS, ENOSPC (after a SIGKILL); "
        f"accepted {len(stream.unique_ids)} (records {len(stream.records)}), landed {landed}, "
        f"lost {len(stream.unique_ids) - landed}, doubled {doubled}, "
        f"{time.monotonic() - began:.1f} s"
    )


# -- the warehouse build -----------------------------------------------------------------

DAY = date(2026, 11, 1)


def mart_rows(marts_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every mart file's rows, sorted, by path relative to the marts directory."""
    found = {}
    for path in sorted(marts_dir.rglob("*.parquet")):
        rows = duckdb.execute("SELECT * FROM read_parquet(?) ORDER BY ALL", [str(path)])
        found[str(path.relative_to(marts_dir))] = rows.fetchall()
    return found


def mart_bytes(marts_dir: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(marts_dir)): path.read_bytes()
        for path in sorted(marts_dir.rglob("*"))
        if path.is_file() and path.name != BALLAST
    }


def build(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    began = time.monotonic()
    result = run_cli(env, "run", "daily", "--date", DAY.isoformat())
    print(f"[disk] run daily: exit {result.returncode} in {time.monotonic() - began:.1f} s")
    return result


def assert_built(result: subprocess.CompletedProcess[str]) -> None:
    # Exit 4: built, but a quality check failed (the generator sends a few amounts in a
    # currency without a rate); the rows are what matters here.
    assert result.returncode in (0, 4), result.stdout + result.stderr
    assert f"{DAY}: " in result.stdout and ": built (" in result.stdout, result.stdout


def load_costs(env: dict[str, str], costs_file: Path) -> None:
    loaded = run_cli(env, "costs", "load", str(costs_file))
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr


def stale_reasons(data_dir: Path) -> list[str]:
    settings = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(data_dir)})
    with open_warehouse(settings) as con:
        (state,) = plan_days(settings, con, [DAY], force=False)
    return state.reasons


def test_build_on_a_bad_disk_publishes_no_half_day(tmp_path: Path) -> None:
    """The day was built; its costs change; the rebuild meets a read-only then a full
    disk, first the marts' own, then the data directory's (the warehouse file and its
    lock). Each time it fails in one line, the old marts stay whole and the day stays
    stale; fixed, the rebuild equals an uninterrupted build."""
    began = time.monotonic()
    events_file = generated(tmp_path, events_per_day=3_000)
    costs_file = events_file.parent / "costs.csv"
    source = tmp_path / "source"
    imported = run_cli(settings_env_for(source), "import", str(events_file))
    assert imported.returncode == 0, imported.stdout + imported.stderr

    # The reference: the same lake and costs, built once, without a fault.
    reference = tmp_path / "reference"
    shutil.copytree(source / "lake", reference / "lake")
    load_costs(settings_env_for(reference), costs_file)
    assert_built(build(settings_env_for(reference)))
    expected = mart_rows(reference / "marts")
    assert any(name.startswith("sessions/") and rows for name, rows in expected.items())
    largest = max(len(data) for data in mart_bytes(reference / "marts").values())

    data_dir = tmp_path / "faulted"
    env = settings_env_for(data_dir)
    marts_dir = data_dir / "marts"
    with (
        small_disk(data_dir, DISK_BYTES) as data_disk,
        small_disk(marts_dir, DISK_BYTES) as marts_disk,
    ):
        shutil.copytree(source / "lake", data_dir / "lake")
        assert_built(build(env))  # the day's first build, before its costs are known
        previous = mart_bytes(marts_dir)
        assert previous and mart_rows(marts_dir) != expected  # the costs change the day
        load_costs(env, costs_file)
        assert stale_reasons(data_dir) == [COSTS_CHANGED]

        faults = 0
        for disk, where in ((marts_disk, "marts"), (data_disk, "data dir")):
            for fault in ("unwritable", "full"):
                if fault == "unwritable":
                    disk.unwritable()
                    reasons = ("[EROFS]", "Read-only file system")
                else:
                    # Room for the largest new mart but not for all of them: the disk
                    # fills part-way through the day's files, or the warehouse's commit.
                    left = disk.fill(largest + 4096)
                    print(f"[disk] {where}: {left} bytes free; the day's marts need more")
                    reasons = ("[ENOSPC]", "No space left on device")
                line = assert_one_line_error(build({**env, **disk.env()}), *reasons)
                print(f"[disk] build, {where} {fault}: {line}")
                # Ours, not an exception's repr: what could not be done, and what that left.
                assert line.startswith("Error: cannot "), line
                assert "not recorded as built" in line or "nothing changed" in line, line
                faults += 1

                # No half-published day: the old marts, byte for byte and readable, no
                # staging files, and the manifest does not claim the day built with its
                # new costs.
                assert mart_bytes(marts_dir) == previous
                assert staging_files(marts_dir) == []
                mart_rows(marts_dir)  # every file still reads
                disk.writable()
                disk.free()
                assert stale_reasons(data_dir) == [COSTS_CHANGED]

        # Fixed: the rebuild gives the rows of an uninterrupted build.
        assert_built(build(env))
        assert mart_rows(marts_dir) == expected
        assert stale_reasons(data_dir) == []
    print(
        f"[disk] build ({data_disk.mode}): {faults} faults (EROFS, ENOSPC on the marts and "
        f"on the data dir); {len(expected)} mart files of {DAY} identical to an "
        f"uninterrupted build, {time.monotonic() - began:.1f} s"
    )


def settings_env_for(data_dir: Path) -> dict[str, str]:
    return clean_env(SESSIONFLOW_DATA_DIR=str(data_dir))
