"""What a build reads around its day (pipeline.lake.paths.BuildWindow), at its edges:
long sessions cut at max_session_days, transaction repeats beyond the window, refunds
whose purchase is out of sight; and what a build reads that older releases wrote."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.lake.paths import BuildWindow
from pipeline.warehouse.build import build_day, ensure_tables
from tests.unit.warehouse.test_warehouse_models import (
    T0,
    event,
    import_events,
    make_settings,
    warehouse_rows,
)

DAY = date(2026, 11, 1)


def test_the_window_reaches_a_day_past_the_cut_and_the_look_back_before() -> None:
    window = BuildWindow(max_session_days=3, transaction_days=6, attribution_days=30)
    assert window.events(DAY) == [DAY + timedelta(days=n) for n in range(-6, 5)]
    assert window.touches(DAY) == [DAY + timedelta(days=n) for n in range(-30, 1)]
    assert window.dates(DAY)[0] == DAY - timedelta(days=30)
    assert BuildWindow(attribution_days=0).touches(DAY) == []


def test_a_session_is_cut_max_session_days_after_its_start_and_counted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event("start", "page_view", T0, "v", session_id="L"),
        event("kept", "page_view", T0 + timedelta(days=3), "v", session_id="L"),
        # Past the cut by a second, in the partition a day after the session window.
        event("cut", "purchase", T0 + timedelta(days=3, seconds=1), "v", session_id="L",
              value=9.0),
        # A later tail, seen only from its own day's build.
        event("later", "page_view", T0 + timedelta(days=5), "v", session_id="L"),
    ], tmp_path / "events.jsonl")  # fmt: skip

    built = build_day(settings, DAY)
    (row,) = warehouse_rows(settings, "sessions")
    session = dict(zip(_columns(settings, "sessions"), row, strict=True))
    assert (session["events"], session["revenue"]) == (2, 0)
    assert built.cut_sessions == 1
    # The build of the later tail's day sees the session's start in its window: the
    # tail is cut there too, and counted, not a session of its own.
    later = build_day(settings, DAY + timedelta(days=5))
    assert later.cut_sessions == 1
    assert later.rows["sessions"] == 0


def test_a_transaction_repeated_after_the_window_counts_again(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    six_days, seven_days = timedelta(days=6), timedelta(days=7)
    import_events(settings, [
        event("p1", "purchase", T0, "v", value=10.0, transaction_id="T"),
        event("p2", "purchase", T0 + six_days, "v", value=10.0, transaction_id="T"),
        event("q1", "purchase", T0, "w", value=5.0, transaction_id="Q"),
        event("q2", "purchase", T0 + seven_days, "w", value=5.0, transaction_id="Q"),
    ], tmp_path / "events.jsonl")  # fmt: skip
    revenue = [
        build_day(settings, day) and _revenue(settings, day)
        for day in (DAY, DAY + six_days, DAY + seven_days)
    ]
    # Within lookback_days + max_session_days (6) of the first: a repeat. Later, the
    # first is out of the window: documented, it counts again.
    assert revenue == [Decimal(15), Decimal(0), Decimal(5)]


def test_a_refund_without_value_or_purchase_in_sight_is_flagged(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event("r", "refund", T0, "v", transaction_id="T-OLD"),
        event("r2", "refund", T0, "w", transaction_id="T-OLD2", value=5.0),
    ], tmp_path / "events.jsonl")  # fmt: skip
    built = build_day(settings, DAY)
    assert built.unmatched_refunds == 1  # the one with a value returns its value
    assert _sum(settings, "refunds", DAY) == Decimal(5)


def test_a_per_session_goal_takes_its_first_events_value_even_if_unconverted(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "data", goals={"lead": 2.0}, goal_counting={"lead": "session"}
    )
    import_events(settings, [
        event("l1", "lead", T0, "v", value=3.0, currency="GBP"),  # no rate: NULL
        event("l2", "lead", T0 + timedelta(seconds=1), "v", value=3.0),
    ], tmp_path / "events.jsonl")  # fmt: skip
    build_day(settings, DAY)
    assert _sum(settings, "conversion_value", DAY) == 0
    assert _sum(settings, "conversions", DAY) == 1


def test_lake_files_of_an_older_release_without_visitor_scope_still_build(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data")
    import_events(settings, [
        event("a", "page_view", T0, "v", session_id="s", utm_source="google",
              utm_medium="cpc"),
    ], tmp_path / "events.jsonl")  # fmt: skip
    for path in settings.lake_dir.rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(["visitor_scope"]), path)
    build_day(settings, DAY)
    # Without a scope, a visitor with a client session id is a stable client id.
    assert warehouse_rows(settings, "monthly_sessions_per_user") == [
        ("2026-11", "shop.example", 1, 1, 1.0)
    ]


def test_a_warehouse_of_an_older_release_keeps_its_users_and_revenue(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data")
    settings.warehouse_path.parent.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        # The two tables as the previous release left them (only the columns that matter).
        con.execute("CREATE TABLE sessions (session_id VARCHAR, site_id VARCHAR, "
                    "visitor_id VARCHAR, session_date DATE, revenue DECIMAL(18, 4))")  # fmt: skip
        con.execute("INSERT INTO sessions VALUES ('s1', 'shop.example', 'v1', '2026-10-05', 7),"
                    " ('s2', 'shop.example', 'v2', '2026-10-05', 0)")  # fmt: skip
        con.execute("CREATE TABLE session_identity (session_date DATE NOT NULL, "
                    "session_id VARCHAR NOT NULL, stable_id BOOLEAN NOT NULL)")  # fmt: skip
        con.execute("INSERT INTO session_identity VALUES ('2026-10-05', 's1', true), "
                    "('2026-10-05', 's2', false)")  # fmt: skip
        ensure_tables(con)
        ensure_tables(con)  # again: nothing more happens
        users = con.execute("SELECT session_id, user_key FROM session_users").fetchall()
        money = con.execute(
            "SELECT refunds, net_revenue FROM sessions ORDER BY session_id"
        ).fetchall()
        tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
        # Applied once and recorded: a later connection does not scan the sessions again.
        con.execute("UPDATE sessions SET net_revenue = NULL WHERE session_id = 's1'")
        ensure_tables(con)
        untouched = con.execute(
            "SELECT net_revenue FROM sessions WHERE session_id = 's1'"
        ).fetchone()
        recorded = con.execute("SELECT count(*) FROM warehouse_migrations").fetchone()
    assert users == [("s1", "v1")]
    assert money == [(Decimal(0), Decimal(7)), (Decimal(0), Decimal(0))]
    assert "session_identity" not in tables
    assert untouched == (None,)
    assert recorded == (1,)


def _columns(settings: Settings, table: str) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _sum(settings: Settings, column: str, day: date) -> Decimal:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        row = con.execute(
            f"SELECT coalesce(sum({column}), 0) FROM sessions WHERE session_date = ?", [day]
        ).fetchone()
    assert row is not None
    return Decimal(row[0])


def _revenue(settings: Settings, day: date) -> Decimal:
    return _sum(settings, "revenue", day)
