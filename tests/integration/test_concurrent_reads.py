"""A BI reader querying in a loop while a backfill rewrites days: no error, no partial day."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

from pipeline.config import load_settings
from pipeline.dev.generator import GeneratorConfig, write_dataset
from pipeline.lake.importer import import_file
from pipeline.warehouse.query import run_query
from tests.conftest import clean_env, run_cli

PER_DAY = (
    "SELECT date, count(*) AS n, sum(pageviews) AS pv FROM sessions GROUP BY date ORDER BY date"
)


def test_reader_never_errors_nor_sees_a_partial_day(tmp_path: Path) -> None:
    env = clean_env(
        SESSIONFLOW_DATA_DIR=str(tmp_path / "data"), PREFECT_HOME=str(tmp_path / "prefect")
    )
    settings = load_settings(environ=env)
    generated = write_dataset(
        GeneratorConfig(days=3, start=date(2026, 11, 1), events_per_day=3000), tmp_path / "gen"
    )
    import_file(settings, generated.events_path, lambda _: None)
    first = run_cli(env, "backfill", "--start", "2026-11-01", "--end", "2026-11-03")
    assert "2026-11-03: not built yet: built" in first.stdout, first.stderr
    complete = run_query(settings.marts_dir, PER_DAY).rows

    seen: list[list[tuple[object, ...]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(run_query(settings.marts_dir, PER_DAY).rows)
            except BaseException as exc:  # any error at all fails the test
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        rebuilt = run_cli(
            env, "backfill", "--start", "2026-11-01", "--end", "2026-11-03", "--force"
        )
    finally:
        stop.set()
        reader.join()
    assert "2026-11-02: forced: built" in rebuilt.stdout, rebuilt.stderr
    assert errors == []
    assert len(seen) > 10  # the reader really ran alongside the rebuild
    # Every answer shows each day whole: the same rows as the complete build.
    assert all(rows == complete for rows in seen)
