"""The daily build in steady state (a day with 35 days of history against the same day
alone), its SQL bare in DuckDB, start-up, backfills, and a 10M-event day under 4 GiB.

Rows (bench/results.md):
  9   steady state: `run daily --date LAST --force` on a 1M-event day whose 35 earlier
      days are in the lake and built (`backfill`), against the same day in a lake holding
      only that day; wall time (9) and peak RSS (9b) of each process, medians
      (`backfill --start LAST --end LAST --force` with --skip-history: `run daily` would
      also build the unbuilt look-back days);
  6   the same steady-state `run daily` against the day's SQL models run bare in DuckDB
      on a copy of the same warehouse (pipeline.warehouse.build's public functions);
  10  a 30-day `backfill` (its days with their history before them) against 30
      single-day builds of the same days (`run daily --date D --force`, in order, the sum
      of their times); the peak RSS of each in the notes;
  7   `run daily --force` on an empty day against the running server, against
      `python -c "import prefect, duckdb, pyarrow"` in the same run (target: ≤ 3 s);
  7b  the same with Prefect's temporary server (no server running; informational);
  8   a 30-day `backfill --force` of a small lake, `--parallel 2` against serial;
  11  (full run only) row 9 at 10M events a day under 4 GiB: [warehouse] memory_limit =
      "3GB" (DuckDB's, which spills beyond it), the peak RSS of the whole build process
      measured against 4 GiB (the Prefect server is a process of its own); time (11) and
      peak RSS (11b). Not a hard limit: RLIMIT_AS and RLIMIT_DATA count DuckDB's and
      Arrow's address-space reservations (VmData reaches 4 GiB with 2.7 GB resident), and
      a build at RLIMIT_DATA's edge hangs instead of failing; a cgroup is the machine's.

Every CLI process runs against one local Prefect server (`sessionflow prefect start`), as
users run it; wall time and peak RSS are of the whole process (GNU time).

Data: a 1M-event day is generated and imported as a user would (`generate` + `import`,
timed, in the notes). The steady-state lake is that day copied to each of 36 days with new
event, session and transaction ids, timestamps and partitions moved to the day: a quarter
of the users come back every day (same visitor and user ids, so the attribution
look-back finds their earlier sessions) and one visitor in fifty repeats a purchase every
day (same transaction id, de-duplicated across days). At 10M events a day each day holds
ten such copies. Copies keep the lake's schema, footers and metadata.

Options: `--skip-history` (bench.run) leaves the 35 history days unbuilt and row 10 out,
and rows 9 and 11 build LAST with a one-day `backfill`: for a build whose day does not
depend on earlier days being built (it re-reads the raw lake), whose history would take
hours to build.

Cost: the 1M-event steady-state lake is 36M events, 3 GB, made in about 2.5 min; row 11's
is ten times that (about 30 GB of disk, about 25 min of pyarrow copies) and builds its 35
days of history: a full run takes an hour or more, depending on the build.

`python -m bench.bench_warehouse bare DATA_DIR DAY` runs the bare SQL in a process of its
own (for its peak RSS), with the settings of its environment, and prints its seconds.
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

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.common import REPEATS, Figure, command_for, free_port
from pipeline.config import Settings, load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.duckdb_connections import connect
from pipeline.lake.importer import import_file
from pipeline.lake.paths import LakeLayout
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
QUICK_DAY_EVENTS = 20_000
HISTORY_DAYS = 35  # days before the measured one, in the lake and built
BIG_COPIES = 10  # the 10M-event day: the 1M-event day ten times over
BACKFILL_DAYS = 30
QUICK_BACKFILL_DAYS = 5
START = date(2026, 10, 1)
LAST = START + timedelta(days=HISTORY_DAYS)  # the measured day
EMPTY_DAY = date(2026, 9, 1)
# Row 11: DuckDB's limit, leaving room under 4 GiB for Python, Prefect and Arrow.
BIG_MEMORY_LIMIT = "3GB"
BIG_PEAK_LIMIT_MB = 4 * 1024
RETURNING = 4  # one user in RETURNING comes back every day
REPEATED_PURCHASE = 50  # one visitor in REPEATED_PURCHASE repeats a purchase every day
COMMAND = command_for("warehouse")
# Ids that must differ between copies of the day, so the copies are new events,
# visitors, sessions and transactions rather than duplicates.
_ID_COLUMNS = ("event_id", "visitor_id", "session_id", "client_session_id", "transaction_id",
               "user_id")  # fmt: skip
_RETURNING_COLUMNS = ("visitor_id", "user_id")  # kept by returning users


@dataclass(frozen=True)
class Timed:
    seconds: float
    peak_rss_mb: float
    output: str
    returncode: int = 0


def run(_bootstrap: str, quick: bool, *, build_history: bool = True) -> list[Figure]:
    repeats = 1 if quick else REPEATS
    events = QUICK_DAY_EVENTS if quick else DAY_EVENTS
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        root = Path(directory)
        with _prefect_server(root / "prefect-server") as api_url:
            started = time.perf_counter()
            day = _prepared(root / "day", events)
            prepared_s = time.perf_counter() - started
            steady = _steady(day, root / "steady", copies=1)
            alone = _alone(steady, root / "alone")
            backfill_days = QUICK_BACKFILL_DAYS if quick else BACKFILL_DAYS
            if build_history:
                backfill = _built_history(steady, api_url, backfill_days)
                figures.append(_backfill_days_row(steady, api_url, backfill, backfill_days))
            figures += _steady_rows(steady, alone, api_url, repeats, build_history, prepared_s)
            shutil.rmtree(steady.settings.data_dir)
            shutil.rmtree(alone.settings.data_dir)
            figures += _empty_day_rows(root / "empty", api_url, repeats, quick)
            figures.append(_backfill_row(day, root / "month", api_url, quick))
            if not quick:
                figures += _big_rows(day, root / "big", api_url, build_history)
    return sorted(figures, key=_row_order)


def _row_order(figure: Figure) -> tuple[int, str]:
    number = figure.row.rstrip("abcdefghijklmnopqrstuvwxyz")
    return int(number), figure.row.removeprefix(number)


@dataclass(frozen=True)
class Lake:
    """A bench lake: its settings; `may_fail`: a build that fails (row 11, out of memory)
    is reported, not raised."""

    settings: Settings
    may_fail: bool = False

    def cli(self, api_url: str | None, *args: str) -> Timed:
        env = _cli_env(self.settings, api_url)
        return _timed([sys.executable, "-m", "pipeline.cli", *args], env, self.may_fail)

    def day_events(self, day: date) -> int:
        return _events_in(LakeLayout(self.settings.lake_dir).files_on(day))


# -- rows ---------------------------------------------------------------------------------


def _steady_rows(
    steady: Lake, alone: Lake, api_url: str, repeats: int, built: bool, prepared_s: float
) -> list[Figure]:
    args = _last_day_build(built)
    with_history: list[Timed] = []
    by_itself: list[Timed] = []
    for _ in range(repeats):  # interleaved: the machine's load falls on both alike
        with_history.append(steady.cli(api_url, *args))
        by_itself.append(alone.cli(api_url, *args))
    bare = [_bare_sql(steady, LAST) for _ in range(repeats)]
    events = steady.day_events(LAST)
    history = (
        f"its {HISTORY_DAYS} earlier days in the lake and built"
        if built
        else f"its {HISTORY_DAYS} earlier days in the lake, not built (--skip-history)"
    )
    lake = (
        f"{_lake_events(steady.settings):,} events in {HISTORY_DAYS + 1} days; generating "
        f"and importing the day took {prepared_s:.0f} s (`generate` + `import`)"
    )
    flow_s = _median_s(with_history)
    return [
        *_against_alone(
            "9",
            f"steady state: `{' '.join(args)}` on a {events:,}-event day, {history}, "
            f"median of {repeats}",
            (with_history, by_itself, events),
            targets=("≤ 1.2", "≤ 1.5"),
            note=lake,
        ),
        Figure(
            row="6",
            what=f"row 9's `{args[0]}` (running Prefect server) on the {events:,}-event day "
            "with its history",
            project=flow_s,
            baseline=_median_s(bare),
            unit="s",
            baseline_what="the day's SQL models bare in DuckDB on a copy of the warehouse",
            target="flow ≤ 8 s, SQL ≤ 5 s (1M events)",
            command=COMMAND,
            note=f"peak RSS flow {_median_mb(with_history):,.0f} MB, bare "
            f"{_median_mb(bare):,.0f} MB; the bare SQL is the flow without process start, "
            "Prefect, compaction, planning, commit, marts, manifest and quality checks",
        ),
    ]


def _last_day_build(built: bool) -> tuple[str, ...]:
    """The command that builds LAST: `run daily`, as users run it; with the history not
    built, a one-day `backfill`, which builds that day only (`run daily` also builds the
    look-back days never built)."""
    if built:
        return ("run", "daily", "--date", LAST.isoformat(), "--force")
    return ("backfill", "--start", LAST.isoformat(), "--end", LAST.isoformat(), "--force")


def _built_history(steady: Lake, api_url: str, backfill_days: int) -> Timed:
    """Build the history days as a user would: `backfill` of the days before the last
    `backfill_days` ones, then (timed, row 10) of those."""
    first = LAST - timedelta(days=backfill_days)
    if first > START:
        earlier = ("backfill", "--start", START.isoformat(), "--end", str(first - timedelta(1)))
        steady.cli(api_url, *earlier)
    end = LAST - timedelta(days=1)
    return steady.cli(api_url, "backfill", "--start", first.isoformat(), "--end", end.isoformat())


def _backfill_days_row(steady: Lake, api_url: str, backfill: Timed, days: int) -> Figure:
    """Row 10: the backfill of the days before LAST against their builds one a day, in
    order (each with the history before it built, as a daily schedule runs them)."""
    first = LAST - timedelta(days=days)
    singles = [
        steady.cli(api_url, "run", "daily", "--date", str(first + timedelta(n)), "--force")
        for n in range(days)
    ]
    events = sum(steady.day_events(first + timedelta(n)) for n in range(days))
    return Figure(
        row="10",
        what=f"{days}-day `backfill` ({events:,} events, their history built), "
        f"`--parallel {steady.settings.flows.backfill_parallel}` ([flows] backfill_parallel)",
        project=backfill.seconds,
        baseline=sum(t.seconds for t in singles),
        unit="s",
        baseline_what=f"{days} single-day `run daily --date D --force` in order, summed",
        target="≤ 1.1",
        command=COMMAND,
        note=f"peak RSS: backfill {backfill.peak_rss_mb:,.0f} MB, single-day builds "
        f"{_median_mb(singles):,.0f} MB (median; largest "
        f"{max(t.peak_rss_mb for t in singles):,.0f} MB); one run each, the backfill first",
    )


def _big_rows(day: Settings, data_dir: Path, api_url: str, build_history: bool) -> list[Figure]:
    """Row 11: row 9 at 10M events a day under the 4 GiB limit (one repetition)."""
    started = time.perf_counter()
    big = _steady(day, data_dir / "steady", copies=BIG_COPIES, memory_limit=BIG_MEMORY_LIMIT)
    alone = _alone(big, data_dir / "alone")
    made_s = time.perf_counter() - started
    history = "history not built (--skip-history)"
    if build_history:
        end = LAST - timedelta(days=1)
        built = big.cli(api_url, "backfill", "--start", str(START), "--end", str(end))
        history = f"its {HISTORY_DAYS} history days' `backfill` {_outcome(built)}"
    args = _last_day_build(build_history)
    with_history = big.cli(api_url, *args)
    by_itself = alone.cli(api_url, *args)
    events = big.day_events(LAST)
    limit = f'[warehouse] memory_limit = "{BIG_MEMORY_LIMIT}", peak RSS measured'
    cost = (
        f"{_lake_events(big.settings):,} events in {HISTORY_DAYS + 1} days, made in "
        f"{made_s:.0f} s (pyarrow copies of the 1M-event day); {history}"
    )
    return _against_alone(
        "11",
        f"steady state at {events:,} events a day under 4 GiB ({limit}): "
        f"`{' '.join(args)}` with {HISTORY_DAYS} days of history, one run",
        ([with_history], [by_itself], events),
        targets=("completes; time stated", f"≤ {BIG_PEAK_LIMIT_MB:,} MB"),
        note=f"{_outcome(with_history)} with history, {_outcome(by_itself)} alone; {cost}",
        same=", same limit",
    )


def _against_alone(
    row: str,
    what: str,
    runs: tuple[list[Timed], list[Timed], int],
    targets: tuple[str, str],
    note: str,
    same: str = "",
) -> list[Figure]:
    """Row `row` (wall time, medians) and `row`b (peak RSS, medians, and the memory per
    million events) of the day's builds with history against those of the day alone."""
    with_history, by_itself, events = runs
    alone = f"the same day alone in a lake{same}"
    return [
        Figure(row, what, _median_s(with_history), _median_s(by_itself), "s", alone,
               targets[0], COMMAND, note),
        Figure(f"{row}b", f"peak RSS of row {row}'s processes", _median_mb(with_history),
               _median_mb(by_itself), "MB", alone, targets[1], COMMAND,
               _per_million(with_history, by_itself, events)),
    ]  # fmt: skip


def _empty_day_rows(data_dir: Path, api_url: str, repeats: int, quick: bool) -> list[Figure]:
    empty = Lake(_settings(data_dir))
    args = ("run", "daily", "--date", EMPTY_DAY.isoformat(), "--force")
    empty.cli(api_url, *args)  # the warehouse's creation is not what is measured
    runs = [empty.cli(api_url, *args) for _ in range(max(repeats, 3))]
    imports = [_timed([sys.executable, "-c", "import prefect, duckdb, pyarrow"], os.environ)
               for _ in range(max(repeats, 3))]  # fmt: skip
    import_s = _median_s(imports)
    figures = [
        Figure(
            row="7",
            what="`run daily --force` on an empty day, running Prefect server (whole process)",
            project=_median_s(runs),
            baseline=import_s,
            unit="s",
            baseline_what='`python -c "import prefect, duckdb, pyarrow"`',
            target="≤ 3 s",
            command=COMMAND,
        )
    ]
    if not quick:
        temporary = empty.cli(None, *args)
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
    month = Lake(_dealt_into_days(day, data_dir, days))
    end = START + timedelta(days=days - 1)
    args = ("backfill", "--start", START.isoformat(), "--end", end.isoformat(), "--force")
    serial = month.cli(api_url, *args, "--parallel", "1")
    parallel = month.cli(api_url, *args, "--parallel", "2")
    return Figure(
        row="8",
        what=f"{days}-day backfill (`backfill --force`, {_lake_events(month.settings):,} "
        "events), `--parallel 2`",
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


def _settings(data_dir: Path, memory_limit: str | None = None) -> Settings:
    environ = {"SESSIONFLOW_DATA_DIR": str(data_dir)}
    if memory_limit:
        environ["SESSIONFLOW_WAREHOUSE__MEMORY_LIMIT"] = memory_limit
    return load_settings(environ=environ)


def _prepared(data_dir: Path, events: int) -> Settings:
    settings = _settings(data_dir)
    files = write_dataset(
        GeneratorConfig(days=1, start=START, events_per_day=events), data_dir / "generated"
    )
    import_file(settings, files.events_path, lambda _: None)
    load_costs(settings, files.costs_path)
    return settings


def _steady(source: Settings, data_dir: Path, copies: int, memory_limit: str | None = None) -> Lake:
    """`source`'s one day `copies` times on each of HISTORY_DAYS + 1 days from START (one
    file per source partition and day), with costs for every day; row 11's lake builds
    under its memory_limit."""
    target = _settings(data_dir, memory_limit)
    days = HISTORY_DAYS + 1
    for path in LakeLayout(source.lake_dir).event_files():
        table = pq.read_table(path)
        returning, repeats = _returning_rows(table)
        partition = date.fromisoformat(path.parent.name.removeprefix("event_date="))
        for shift in range(days):
            moved = _moved(table, timedelta(days=shift))
            # Named after its source partition too: two sources may move into one date.
            name = f"from-{partition}-{path.stem}"
            out = LakeLayout(target.lake_dir).event_file(partition + timedelta(shift), name)
            out.parent.mkdir(parents=True, exist_ok=True)
            with pq.ParquetWriter(out, table.schema) as writer:
                for copy in range(copies):
                    writer.write_table(_renamed(moved, shift, copy, returning, repeats))
    _costs_for_days(target, data_dir, days)
    return Lake(target, may_fail=memory_limit is not None)


def _returning_rows(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    """Masks of the rows of returning users (who keep their visitor and user ids every
    day) and of visitors who repeat their purchases every day (their transaction ids)."""
    visitors = pc.dictionary_encode(table["visitor_id"]).combine_chunks()
    hashes = [zlib.crc32(v.encode()) for v in visitors.dictionary.to_pylist()]
    returning = pa.array([h % RETURNING == 0 for h in hashes])
    repeats = pa.array([h % REPEATED_PURCHASE == 1 for h in hashes])
    return pc.take(returning, visitors.indices), pc.take(repeats, visitors.indices)


def _moved(table: pa.Table, by: timedelta) -> pa.Table:
    index = table.schema.get_field_index("event_ts")
    shifted = pc.add(table["event_ts"], pa.scalar(by, pa.duration("us")))
    return table.set_column(index, table.schema.field(index), shifted)


def _renamed(
    table: pa.Table, day: int, copy: int, returning: pa.Array, repeats: pa.Array
) -> pa.Table:
    """Copy `copy` of day `day`'s ids: new ones (suffixed), except the returning users'
    visitor and user ids and the repeated purchases' transaction ids, which are the same
    every day (copy 0 of day 0 is the source itself)."""
    fresh = f"~{day}.{copy}" if day or copy else ""
    kept = f"~{copy}" if copy else ""
    for name in _ID_COLUMNS:
        index = table.schema.get_field_index(name)
        renamed = pc.binary_join_element_wise(table[name], fresh, "")
        if name in _RETURNING_COLUMNS or name == "transaction_id":
            mask = returning if name in _RETURNING_COLUMNS else repeats
            same = pc.binary_join_element_wise(table[name], kept, "")
            renamed = pc.if_else(mask, same, renamed)
        table = table.set_column(index, table.schema.field(index), renamed)
    return table


def _alone(source: Lake, data_dir: Path) -> Lake:
    """A lake holding only LAST's partition of `source` (hard links) and its costs."""
    target = _settings(data_dir, source.settings.warehouse.memory_limit)
    for path in LakeLayout(source.settings.lake_dir).files_on(LAST):
        out = LakeLayout(target.lake_dir).event_file(LAST, path.stem)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, out)
    _copy_costs(source.settings, target)
    return Lake(target, source.may_fail)


def _dealt_into_days(source: Settings, data_dir: Path, days: int) -> Settings:
    """`source`'s visitors dealt into `days` groups (by a hash of the visitor id); group n
    moved n days later, partitions and timestamps alike."""
    target = _settings(data_dir)
    for path in LakeLayout(source.lake_dir).event_files():
        table = pq.read_table(path)
        visitors = pc.dictionary_encode(table["visitor_id"]).combine_chunks()
        groups = pa.array([zlib.crc32(v.encode()) % days for v in visitors.dictionary.to_pylist()])
        group = pc.take(groups, visitors.indices)
        partition = date.fromisoformat(path.parent.name.removeprefix("event_date="))
        for shift in range(days):
            moved = timedelta(days=shift)
            part = _moved(table.filter(pc.equal(group, shift)), moved)
            # Named after its source partition too: two sources may move into one date.
            name = f"from-{partition}-{path.stem}"
            out = LakeLayout(target.lake_dir).event_file(partition + moved, name)
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, out)
    _costs_for_days(target, data_dir, days)
    return target


def _costs_for_days(target: Settings, data_dir: Path, days: int) -> None:
    """Marketing costs for `days` days from START (the generator's, of a tiny dataset)."""
    files = write_dataset(
        GeneratorConfig(days=days, start=START, events_per_day=1_000),
        data_dir / "generated",
    )
    target.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    load_costs(target, files.costs_path)


def _copy_costs(source: Settings, target: Settings) -> None:
    target.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source.warehouse_path, target.warehouse_path)
    # The source's built days are not the target's: its manifest is dropped by a rebuild
    # (--force), its marts are not copied.


def _lake_events(settings: Settings) -> int:
    return _events_in(LakeLayout(settings.lake_dir).event_files())


def _events_in(files: list[Path]) -> int:
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
        SESSIONFLOW_DATA_DIR=str(settings.data_dir),
        SESSIONFLOW_WAREHOUSE__MEMORY_LIMIT=settings.warehouse.memory_limit,
        PREFECT_HOME=str(settings.data_dir / "prefect"),
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _timed(command: list[str], env: Mapping[str, str], may_fail: bool = False) -> Timed:
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
        if process.returncode not in (0, 4) and not may_fail:
            # 4: a quality check flagged something
            raise RuntimeError(f"{command} exited {process.returncode}:\n{output[-2000:]}")
        peak_kib = float(Path(rss.name).read_text().split()[-1])
    return Timed(seconds, peak_kib / 1024, output, process.returncode)


def _bare_sql(lake: Lake, day: date) -> Timed:
    """The day's models bare in DuckDB, in a process of their own; its own time."""
    run = _timed(
        [sys.executable, "-m", "bench.bench_warehouse", "bare", str(lake.settings.data_dir),
         day.isoformat()],
        _cli_env(lake.settings, None),
    )  # fmt: skip
    seconds = float(run.output.strip().splitlines()[-1])
    return Timed(seconds, run.peak_rss_mb, run.output)


def bare_models(settings: Settings, day: date) -> float:
    """Seconds to run the day's SQL models on a copy of the warehouse (the same
    marketing_costs and earlier days as the flow), nothing else, under the same
    [warehouse] limits."""
    copy = settings.data_dir / "bare.duckdb"
    shutil.copyfile(settings.warehouse_path, copy)
    try:
        started = time.perf_counter()
        with connect(settings, copy) as con:
            prepare_connection(con, settings)
            params = model_parameters(
                settings, day, lake_reads(settings, day), settings.data_dir / "scratch"
            )
            run_day_models(con, params)
        return time.perf_counter() - started
    finally:
        copy.unlink(missing_ok=True)
        Path(f"{copy}.wal").unlink(missing_ok=True)


def _outcome(timed: Timed) -> str:
    if timed.returncode in (0, 4):
        return f"completed in {timed.seconds:,.0f} s"
    lines = [line for line in timed.output.splitlines() if line.strip()]
    return f"FAILED (exit {timed.returncode}: {lines[-1][:160] if lines else ''})"


def _per_million(with_history: list[Timed], by_itself: list[Timed], events: int) -> str:
    millions = events / 1e6
    return (
        f"memory per million events of the day: {_median_mb(with_history) / millions:,.0f} MB "
        f"with history, {_median_mb(by_itself) / millions:,.0f} MB alone (peak RSS of the "
        "whole process / millions of events)"
    )


def _median_s(runs: list[Timed]) -> float:
    return statistics.median(t.seconds for t in runs)


def _median_mb(runs: list[Timed]) -> float:
    return statistics.median(t.peak_rss_mb for t in runs)


if __name__ == "__main__":
    if sys.argv[1:2] == ["bare"]:
        settings = load_settings(environ={**os.environ, "SESSIONFLOW_DATA_DIR": sys.argv[2]})
        print(f"{bare_models(settings, date.fromisoformat(sys.argv[3])):.3f}")
    else:
        sys.exit("usage: python -m bench.bench_warehouse bare DATA_DIR DAY")
