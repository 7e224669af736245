"""The daily flow against the same SQL bare in DuckDB; start-up; a 30-day backfill.

Rows (bench/results.md):
  6   `sessionflow run daily --date D --force` on a 1M-event day, on a running local
      Prefect server (`sessionflow prefect start`), against the day's SQL models run bare
      in DuckDB on the same lake (process start, compaction, planning, commit, marts,
      manifest and quality checks are the flow's overhead);
  6b  the same on a 10M-event day, one repetition each, with the peak RSS of each process;
  7   `run daily --force` on an empty day against the running server, against
      `python -c "import prefect, duckdb, pyarrow"` in the same run (target: ≤ 3 s);
  7b  the same with Prefect's temporary server (no server running; informational);
  8   a 30-day `backfill --force`, `--parallel 2` against serial.

Data: a 1M-event day is generated and imported as a user would (`generate` + `import`,
timed, in the notes). The 10M-event day is that lake repeated ten times with new event,
visitor, session and transaction ids (generating and importing 10M events would take
most of an hour on two cores); the 30 days are the 1M-event day's visitors dealt into 30
groups, each moved to its own day. Both keep the lake's schema, footers and metadata.

`python -m bench.bench_warehouse bare DATA_DIR DAY` runs the bare SQL in a process of its
own (for its peak RSS) and prints its seconds.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.common import REPEATS, Figure, command_for, free_port
from pipeline.config import Settings, load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.build import (
    lake_reads,
    model_parameters,
    prepare_connection,
    run_day_models,
)
from pipeline.warehouse.costs import load_costs
from pipeline.warehouse.prefect_server import LocalPrefectServer

NEEDS_BROKER = False
DAY_EVENTS = 1_000_000
QUICK_DAY_EVENTS = 100_000
BIG_COPIES = 10  # the 10M-event day: the 1M-event day ten times over
BACKFILL_DAYS = 30
QUICK_BACKFILL_DAYS = 5
START = date(2026, 10, 1)
EMPTY_DAY = date(2026, 9, 1)
COMMAND = command_for("warehouse")
# Ids that must differ between copies of the day, so the copies are new events,
# visitors, sessions and transactions rather than duplicates.
_ID_COLUMNS = ("event_id", "visitor_id", "session_id", "client_session_id", "transaction_id",
               "user_id")  # fmt: skip


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_rss_mb: float
    output: str


def run(_bootstrap: str, quick: bool) -> list[Figure]:
    repeats = 1 if quick else REPEATS
    events = QUICK_DAY_EVENTS if quick else DAY_EVENTS
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        root = Path(directory)
        with _prefect_server(root / "prefect-server") as api_url:
            started = time.perf_counter()
            day = _prepared(root / "day", events)
            prepared_s = time.perf_counter() - started
            figures.append(_day_row(day, api_url, repeats, prepared_s, quick))
            if not quick:
                figures.append(_big_day_row(day, root / "big", api_url))
            figures += _empty_day_rows(root / "empty", api_url, repeats, quick)
            figures.append(_backfill_row(day, root / "month", api_url, quick))
    return figures


# -- rows ---------------------------------------------------------------------------------


def _day_row(day: Settings, api_url: str, repeats: int, prepared_s: float, quick: bool) -> Figure:
    args = ("run", "daily", "--date", START.isoformat(), "--force")
    flow = [_timed_cli(day, api_url, *args) for _ in range(repeats)]
    bare = [_bare_sql(day, START) for _ in range(repeats)]
    events = _lake_events(day)
    return Figure(
        row="6",
        what=f"daily flow on a {events:,}-event day (`run daily --force`, running Prefect "
        f"server), median of {repeats}",
        project=statistics.median(t.seconds for t in flow),
        baseline=statistics.median(t.seconds for t in bare),
        unit="s",
        baseline_what="the same SQL models bare in DuckDB",
        target="≤ 1.3",
        command=COMMAND,
        note=f"generating and importing the {events:,} events took {prepared_s:.0f} s "
        f"(`generate` + `import`); peak RSS flow {_mb(flow)}, bare {_mb(bare)}"
        + ("; quick: a 100k-event day, one repetition" if quick else ""),
    )


def _big_day_row(day: Settings, data_dir: Path, api_url: str) -> Figure:
    started = time.perf_counter()
    big = _repeated_lake(day, data_dir, BIG_COPIES)
    made_s = time.perf_counter() - started
    flow = _timed_cli(big, api_url, "run", "daily", "--date", START.isoformat(), "--force")
    bare = _bare_sql(big, START)
    return Figure(
        row="6b",
        what=f"daily flow on a {_lake_events(big):,}-event day (`run daily --force`, "
        "running Prefect server), one repetition",
        project=flow.seconds,
        baseline=bare.seconds,
        unit="s",
        baseline_what="the same SQL models bare in DuckDB",
        target="≤ 1.3",
        command=COMMAND,
        note=f"peak RSS: flow process {flow.peak_rss_mb:,.0f} MB, bare SQL process "
        f"{bare.peak_rss_mb:,.0f} MB; one repetition each (the section stays under 12 min); "
        f"the day is the 1M-event lake written {BIG_COPIES} times with new ids ({made_s:.0f} s)",
    )


def _empty_day_rows(data_dir: Path, api_url: str, repeats: int, quick: bool) -> list[Figure]:
    empty = _settings(data_dir)
    args = ("run", "daily", "--date", EMPTY_DAY.isoformat(), "--force")
    _timed_cli(empty, api_url, *args)  # the warehouse's creation is not what is measured
    runs = [_timed_cli(empty, api_url, *args) for _ in range(max(repeats, 3))]
    imports = [_timed([sys.executable, "-c", "import prefect, duckdb, pyarrow"], os.environ)
               for _ in range(max(repeats, 3))]  # fmt: skip
    import_s = statistics.median(t.seconds for t in imports)
    figures = [
        Figure(
            row="7",
            what="`run daily --force` on an empty day, running Prefect server (whole process)",
            project=statistics.median(t.seconds for t in runs),
            baseline=import_s,
            unit="s",
            baseline_what='`python -c "import prefect, duckdb, pyarrow"`',
            target="≤ 3 s",
            command=COMMAND,
        )
    ]
    if not quick:
        temporary = _timed_cli(empty, None, *args)
        errors = [line for line in temporary.output.splitlines() if " ERROR " in line
                  or line.startswith("ERROR") or "| ERROR" in line]  # fmt: skip
        figures.append(
            Figure(
                row="7b",
                what="the same with Prefect's temporary server (no server running)",
                project=temporary.seconds,
                baseline=import_s,
                unit="s",
                baseline_what='`python -c "import prefect, duckdb, pyarrow"`',
                target="informational",
                command=COMMAND,
                note=f"one run; {len(errors)} ERROR lines in its output"
                + (f" (first: {errors[0][:120]})" if errors else ""),
            )
        )
    return figures


def _backfill_row(day: Settings, data_dir: Path, api_url: str, quick: bool) -> Figure:
    days = QUICK_BACKFILL_DAYS if quick else BACKFILL_DAYS
    month = _dealt_into_days(day, data_dir, days)
    end = START + timedelta(days=days - 1)
    args = ("backfill", "--start", START.isoformat(), "--end", end.isoformat(), "--force")
    serial = _timed_cli(month, api_url, *args, "--parallel", "1")
    parallel = _timed_cli(month, api_url, *args, "--parallel", "2")
    return Figure(
        row="8",
        what=f"{days}-day backfill (`backfill --force`, {_lake_events(month):,} events), "
        "`--parallel 2`",
        project=parallel.seconds,
        baseline=serial.seconds,
        unit="s",
        baseline_what="the same, `--parallel 1`",
        target="speed-up (ratio < 1)",
        command=COMMAND,
        note=f"speed-up {serial.seconds / parallel.seconds:.2f}x on 2 shared cores; one run "
        "each (serial first)",
    )


# -- data ---------------------------------------------------------------------------------


def _settings(data_dir: Path) -> Settings:
    return load_settings(environ={"SESSIONFLOW_DATA_DIR": str(data_dir)})


def _prepared(data_dir: Path, events: int) -> Settings:
    settings = _settings(data_dir)
    files = write_dataset(
        GeneratorConfig(days=1, start=START, events_per_day=events), data_dir / "generated"
    )
    import_file(settings, files.events_path, lambda _: None)
    load_costs(settings, files.costs_path)
    return settings


def _lake_files(settings: Settings) -> list[Path]:
    return sorted((settings.lake_dir / "events").glob("event_date=*/*.parquet"))


def _repeated_lake(source: Settings, data_dir: Path, copies: int) -> Settings:
    """`source`'s lake `copies` times, copy n's ids suffixed with `~n`: one file per
    partition (nothing to compact), the same costs."""
    target = _settings(data_dir)
    for path in _lake_files(source):
        table = pq.read_table(path)
        out = target.lake_dir / "events" / path.parent.name / f"import-x{copies}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        with pq.ParquetWriter(out, table.schema) as writer:
            for copy in range(copies):
                writer.write_table(_with_suffix(table, f"~{copy}") if copy else table)
    _copy_costs(source, target)
    return target


def _with_suffix(table: pa.Table, suffix: str) -> pa.Table:
    for name in _ID_COLUMNS:
        index = table.schema.get_field_index(name)
        column = pc.binary_join_element_wise(table[name], suffix, "")
        table = table.set_column(index, table.schema.field(index), column)
    return table


def _dealt_into_days(source: Settings, data_dir: Path, days: int) -> Settings:
    """`source`'s visitors dealt into `days` groups (by a hash of the visitor id); group n
    moved n days later, partitions and timestamps alike."""
    target = _settings(data_dir)
    for path in _lake_files(source):
        table = pq.read_table(path)
        visitors = pc.dictionary_encode(table["visitor_id"]).combine_chunks()
        groups = pa.array([zlib.crc32(v.encode()) % days for v in visitors.dictionary.to_pylist()])
        group = pc.take(groups, visitors.indices)
        partition = date.fromisoformat(path.parent.name.removeprefix("event_date="))
        for shift in range(days):
            part = table.filter(pc.equal(group, shift))
            moved = timedelta(days=shift)
            part = part.set_column(
                part.schema.get_field_index("event_ts"),
                part.schema.field("event_ts"),
                pc.add(part["event_ts"], pa.scalar(moved, pa.duration("us"))),
            )
            # Named after its source partition too: two sources may move into one date.
            name = f"from-{partition}-{path.name}"
            out = target.lake_dir / "events" / f"event_date={partition + moved}" / name
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, out)
    files = write_dataset(
        GeneratorConfig(days=days, start=START, events_per_day=1_000),
        data_dir / "generated",
    )
    target.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    load_costs(target, files.costs_path)
    return target


def _copy_costs(source: Settings, target: Settings) -> None:
    target.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.warehouse_path, target.warehouse_path)
    # The source's built days are not the target's: its manifest is dropped by a rebuild
    # (--force), its marts are not copied.


def _lake_events(settings: Settings) -> int:
    files = [str(path) for path in _lake_files(settings)]
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


# -- measuring ----------------------------------------------------------------------------


@contextmanager
def _prefect_server(state_dir: Path) -> Iterator[str]:
    server = LocalPrefectServer(state_dir, port=free_port())
    server.start(timeout_s=180.0)
    try:
        yield server.api_url
    finally:
        server.stop()


def _cli_env(settings: Settings, api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SESSIONFLOW_", "KAFKA_", "PREFECT_API_URL"))}  # fmt: skip
    env.update(
        SESSIONFLOW_DATA_DIR=str(settings.data_dir), PREFECT_HOME=str(settings.data_dir / "prefect")
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _timed_cli(settings: Settings, api_url: str | None, *args: str) -> Timed:
    timed = _timed([sys.executable, "-m", "pipeline.cli", *args], _cli_env(settings, api_url))
    return timed


def _timed(command: list[str], env: Mapping[str, str]) -> Timed:
    """Wall time and peak RSS of one process. The RSS comes from GNU time, a small
    parent: a child forked from this (large) process reports this one's RSS as its peak
    until it execs."""
    with tempfile.NamedTemporaryFile(prefix="sessionflow-rss-") as rss:
        wrapped = ["/usr/bin/time", "-f", "%M", "-o", rss.name, *command]
        started = time.perf_counter()
        process = subprocess.run(wrapped, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, check=False)  # fmt: skip
        seconds = time.perf_counter() - started
        output = process.stdout.decode(errors="replace")
        if process.returncode not in (0, 4):  # 4: a quality check flagged something
            raise RuntimeError(f"{command} exited {process.returncode}:\n{output[-2000:]}")
        peak_kib = float(Path(rss.name).read_text().split()[-1])
    return Timed(seconds, peak_kib / 1024, output)


def _bare_sql(settings: Settings, day: date) -> Timed:
    """The day's models bare in DuckDB, in a process of their own; its own time."""
    run = _timed(
        [sys.executable, "-m", "bench.bench_warehouse", "bare", str(settings.data_dir),
         day.isoformat()],
        os.environ,
    )  # fmt: skip
    seconds = float(run.output.strip().splitlines()[-1])
    return Timed(seconds, run.peak_rss_mb, run.output)


def bare_models(data_dir: Path, day: date) -> float:
    """Seconds to run the day's SQL models on a copy of the warehouse (the same
    marketing_costs as the flow), nothing else."""
    settings = _settings(data_dir)
    copy = data_dir / "bare.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    try:
        started = time.perf_counter()
        with duckdb.connect(str(copy)) as con:
            prepare_connection(con, settings)
            params = model_parameters(
                settings, day, lake_reads(settings, day), data_dir / "scratch"
            )
            run_day_models(con, params)
        return time.perf_counter() - started
    finally:
        copy.unlink(missing_ok=True)
        Path(f"{copy}.wal").unlink(missing_ok=True)


def _mb(runs: list[Timed]) -> str:
    return f"{statistics.median(t.peak_rss_mb for t in runs):,.0f} MB"


if __name__ == "__main__":
    if sys.argv[1:2] == ["bare"]:
        print(f"{bare_models(Path(sys.argv[2]), date.fromisoformat(sys.argv[3])):.3f}")
    else:
        sys.exit("usage: python -m bench.bench_warehouse bare DATA_DIR DAY")
