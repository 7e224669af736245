"""The lake summaries (pipeline/warehouse/summaries.py): a day's build reads the raw
events of its own sessions only, the summaries are remade exactly when a partition's
files change, and late events in the attribution look-back make a day stale by name."""

from __future__ import annotations

import tempfile
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.lake.paths import LakeLayout
from pipeline.warehouse import summaries
from pipeline.warehouse.build import (
    READS,
    SCRATCH,
    build_day,
    day_event_files,
    lake_reads,
    model_parameters,
    open_warehouse,
    register_config_tables,
    run_day_models,
)
from pipeline.warehouse.manifest import ATTRIBUTION_CHANGED, plan_days
from pipeline.warehouse.status import warehouse_status
from pipeline.warehouse.summaries import empty_lake_file, refresh_summaries
from tests.unit.warehouse.test_warehouse_models import (
    T0,
    event,
    import_events,
    make_settings,
    warehouse_rows,
)

SOURCE_COLUMNS = slice(13, 17)  # source, medium, campaign, channel_group of `sessions`
ENGAGED, ENGAGEMENT_TIME_S = 9, 22  # columns of `sessions`

DAY = date(2026, 11, 1)  # T0's date (12:00 UTC)


def _history(days: int) -> list[dict[str, object]]:
    """One visitor a day before DAY, each with a page view."""
    return [
        event(f"h{n}", "page_view", T0 - timedelta(days=n), f"old{n}", session_id=f"H{n}")
        for n in range(1, days + 1)
    ]


def test_a_days_build_reads_only_the_partitions_its_own_sessions_have_events_on(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        *_history(20),
        # The day's session runs past midnight into the next partition.
        event("a1", "page_view", T0.replace(hour=23, minute=50), "v", session_id="A"),
        event("a2", "page_view", T0.replace(hour=23, minute=50) + timedelta(minutes=20), "v",
              session_id="A"),
        # Another visitor two days later: its partition is in the day's reach, not read.
        event("b1", "page_view", T0 + timedelta(days=2), "w", session_id="B"),
    ], tmp_path / "events.jsonl")  # fmt: skip
    layout = LakeLayout(settings.lake_dir)

    with open_warehouse(settings) as con, tempfile.TemporaryDirectory() as scratch:
        register_config_tables(con, settings)
        params = model_parameters(settings, DAY, lake_reads(settings, DAY), Path(scratch))
        run_day_models(con, params)
        read = day_event_files(con, params[READS], params[SCRATCH])
        sessions = con.execute("SELECT events FROM sessions_this_run").fetchall()

    expected = [*layout.files_on(DAY), *layout.files_on(DAY + timedelta(days=1))]
    assert sorted(read[:-1]) == sorted(str(path) for path in expected)
    assert read[-1] == str(empty_lake_file(params[SCRATCH]))
    assert sessions == [(2,)]  # both its events, one on each partition


def test_summaries_are_remade_exactly_when_a_partitions_files_change(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, _history(10), tmp_path / "history.jsonl")
    build_day(settings, DAY)
    layout = LakeLayout(settings.lake_dir)
    late_day, compacted_day = DAY - timedelta(days=3), DAY - timedelta(days=5)

    def refresh() -> list[date]:
        reads = lake_reads(settings, DAY)
        with open_warehouse(settings) as con, tempfile.TemporaryDirectory() as scratch:
            return refresh_summaries(con, reads.layout, reads.files, Path(scratch))

    assert refresh() == []
    late = event("late", "page_view", T0 - timedelta(days=3, hours=1), "late", session_id="L")
    import_events(settings, [late], tmp_path / "late.jsonl")
    (renamed,) = layout.files_on(compacted_day)
    renamed.rename(renamed.with_name("compacted.parquet"))  # same rows: compaction
    assert refresh() == [late_day]
    assert refresh() == []
    with open_warehouse(settings) as con:
        parts = con.execute(
            "SELECT count(*) FROM lake_partition_sessions WHERE event_date = ?", [late_day]
        ).fetchall()
    assert parts == [(2,)]  # H3's and the late one's


def test_a_late_touch_in_the_attribution_look_back_makes_the_day_stale_by_name(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        *_history(30),
        event("d1", "page_view", T0, "v-today", user_id="u1"),  # direct
    ], tmp_path / "events.jsonl")  # fmt: skip
    build_day(settings, DAY)
    assert _sources(settings) == [("(direct)", "(none)", "(not set)", "Direct")]
    touch_day = DAY - timedelta(days=20)
    newsletter = event(
        "t1", "page_view", T0 - timedelta(days=20), "v-then", user_id="u1",
        page_url="https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
    )  # fmt: skip
    import_events(settings, [newsletter], tmp_path / "late.jsonl")

    with open_warehouse(settings) as con:
        (state,) = plan_days(settings, con, [DAY], force=False)
    assert state.reasons == [f"{ATTRIBUTION_CHANGED} (events of {touch_day})"]

    build_day(settings, DAY)
    assert _sources(settings) == [("newsletter", "email", "nov", "Email")]
    with open_warehouse(settings) as con:
        (state,) = plan_days(settings, con, [DAY], force=False)
    assert state.reasons == []


def _sources(settings: Settings) -> list[tuple[object, ...]]:
    return [row[SOURCE_COLUMNS] for row in warehouse_rows(settings, "sessions")]


def test_new_summary_models_remake_every_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, _history(3), tmp_path / "history.jsonl")
    build_day(settings, DAY)
    with open_warehouse(settings) as con:
        con.execute("ALTER TABLE lake_partition_sessions ADD COLUMN dropped_by_a_release INT")
    # A release whose summary models differ (their digest is all that tells).
    monkeypatch.setattr(summaries, "summary_version", lambda: "another-release")
    reads = lake_reads(settings, DAY)
    with open_warehouse(settings) as con, tempfile.TemporaryDirectory() as scratch:
        remade = refresh_summaries(con, reads.layout, reads.files, Path(scratch))
        columns = con.table("lake_partition_sessions").columns
    assert remade == [DAY - timedelta(days=n) for n in (3, 2, 1)]
    assert "dropped_by_a_release" not in columns  # the tables were made again


def test_status_reads_a_manifest_an_older_release_wrote(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, _history(3), tmp_path / "history.jsonl")
    build_day(settings, DAY)
    with open_warehouse(settings) as con:
        con.execute("ALTER TABLE build_manifest DROP COLUMN attribution")
    # Read-only, as `status` opens it: nothing migrates the table.
    assert [state.reasons for state in warehouse_status(settings).days] == [[]]


def test_engagement_signals_before_a_sessions_first_event_count(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    midnight = T0.replace(hour=0, minute=0)
    import_events(settings, [
        # 20 s of engagement sent just before midnight, then the session's first event.
        event("e1", "user_engagement", midnight - timedelta(seconds=30), "v", session_id="S",
              engagement_time_ms=20_000),
        event("p1", "page_view", midnight + timedelta(seconds=30), "v", session_id="S"),
    ], tmp_path / "events.jsonl")  # fmt: skip
    build_day(settings, DAY)
    (row,) = warehouse_rows(settings, "sessions")
    assert row[ENGAGED] is True and row[ENGAGEMENT_TIME_S] == 20.0


def _touches(settings: Settings) -> list[tuple[object, ...]]:
    with open_warehouse(settings) as con:
        return con.execute(
            "SELECT attribution_user, session_start, source FROM lake_session_touches ORDER BY ALL"
        ).fetchall()


def test_a_session_across_partitions_is_one_touch_and_is_combined_again_when_either_changes(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    start = (T0 - timedelta(days=5)).replace(hour=23, minute=50)
    older = T0 - timedelta(days=9)
    import_events(settings, [
        # Two earlier touches of u1: only the latest can credit the day's direct session.
        event("o1", "page_view", older, "v0", user_id="u1",
              page_url="https://shop.example/?utm_source=old&utm_medium=email"),
        # This one starts on one partition (from the newsletter) and tells its user only
        # on the next one.
        event("n1", "page_view", start, "v1",
              page_url="https://shop.example/?utm_source=newsletter&utm_medium=email"),
        event("n2", "page_view", start + timedelta(minutes=20), "v1", user_id="u1"),
        event("d1", "page_view", T0, "v2", user_id="u1"),  # direct
    ], tmp_path / "events.jsonl")  # fmt: skip
    build_day(settings, DAY)

    assert _touches(settings) == [("u1", older, "old"), ("u1", start, "newsletter")]
    assert _sources(settings) == [("newsletter", "email", "(not set)", "Email")]
    with open_warehouse(settings) as con, tempfile.TemporaryDirectory() as scratch:
        register_config_tables(con, settings)
        params = model_parameters(settings, DAY, lake_reads(settings, DAY), Path(scratch))
        run_day_models(con, params)
        kept = con.execute("SELECT source FROM stg_touches").fetchall()
    assert kept == [("newsletter",)]  # the older touch cannot be the last non-direct one

    # The part that told the user goes (its partition's only file): the session is v1's
    # now, combined again from its remaining part, and the older touch credits u1.
    (second_part,) = LakeLayout(settings.lake_dir).files_on(start.date() + timedelta(days=1))
    second_part.unlink()
    build_day(settings, DAY)
    assert _touches(settings) == [("u1", older, "old"), ("v1", start, "newsletter")]
    assert _sources(settings) == [("old", "email", "(not set)", "Email")]


def test_summarising_waits_until_no_days_models_are_reading() -> None:
    access = summaries.SummaryAccess()
    done: list[str] = []
    reading, release = threading.Event(), threading.Event()

    def models() -> None:
        with access.reading():
            reading.set()
            release.wait(30)
            done.append("models")

    def summarise() -> None:
        with access.writing():
            done.append("summary")

    reader, writer = threading.Thread(target=models), threading.Thread(target=summarise)
    reader.start()
    assert reading.wait(30)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive()  # waiting for the reader, however long it reads
    release.set()
    reader.join(30)
    writer.join(30)
    assert done == ["models", "summary"]
