"""The warehouse's trust rules: an anonymous event never drops, replaces or devalues an
authenticated one, whichever landed first; among events of one kind the first stands.
Each case lands through `import` (in the order given, a file per landing) and is read by
the day's models, bare."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from pipeline.lake.paths import LakeLayout
from pipeline.warehouse.build import build_day
from tests.unit.warehouse.test_warehouse_models import (
    DAY,
    T0,
    BareRunner,
    Row,
    event,
    import_events,
    make_settings,
)
from tests.unit.warehouse.test_warehouse_models import bare as bare  # the fixture

S = timedelta(seconds=1)
ANONYMOUS = {"trust": "anonymous"}


def landed(tmp_path: Path, settings: Any, *landings: list[Row]) -> None:
    for number, events in enumerate(landings):
        import_events(settings, events, tmp_path / f"landing-{number}.jsonl")


def revenue_of(rows: list[Row]) -> dict[str, tuple[Any, Any]]:
    return {row["visitor_id"]: (row["revenue"], row["refunds"]) for row in rows}


def shop_revenue(settings: Any) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "SELECT revenue FROM daily_site_summary WHERE date = ? AND site_id = ?",
            [DAY, "shop.example"],
        ).fetchall()


def test_an_authenticated_event_wins_its_event_id_whichever_landed_first(
    tmp_path: Path, bare: BareRunner
) -> None:
    settings = make_settings(tmp_path / "data")
    # A page view sent anonymously first takes the shop's order id as its event id.
    squatter = event("order-1001", "page_view", T0, "attacker", **ANONYMOUS)
    purchase = event("order-1001", "purchase", T0 + S, "buyer", value=499.0, currency="USD")
    # The other way round: the authenticated event first, an anonymous copy later.
    first = event("order-1002", "purchase", T0, "buyer-2", value=499.0, currency="USD")
    copy = event("order-1002", "purchase", T0 + S, "attacker-2", value=0.01, **ANONYMOUS)
    # Among anonymous events the first landing stands, as before.
    anonymous_first = event("a-1", "page_view", T0, "anon-1", **ANONYMOUS)
    anonymous_again = event("a-1", "page_view", T0 + S, "anon-2", **ANONYMOUS)
    landed(
        tmp_path, settings, [squatter, first, anonymous_first], [purchase, copy, anonymous_again]
    )

    run = bare(settings)
    kept = {row["event_id"]: row["visitor_id"] for row in run.rows("stg_events")}
    assert kept == {"order-1001": "buyer", "order-1002": "buyer-2", "a-1": "anon-1"}
    sessions = revenue_of(run.rows("sessions_this_run"))
    assert sessions["buyer"][0] == sessions["buyer-2"][0] == Decimal(499)


def test_anonymous_purchases_never_take_an_authenticated_transaction(
    tmp_path: Path, bare: BareRunner
) -> None:
    settings = make_settings(tmp_path / "data")
    early = [
        event(f"pre-{n}", "purchase", T0, f"attacker-{n}", value=0.01, currency="USD",
              transaction_id=str(n), **ANONYMOUS)
        for n in (1001, 1002)
    ]  # fmt: skip
    orders = [
        event(f"order-{n}", "purchase", T0 + S, f"buyer-{n}", value=499.0, currency="USD",
              transaction_id=str(n))
        for n in (1001, 1002)
    ]  # fmt: skip
    # An anonymous-only transaction counts its first purchase, as any transaction does.
    gtag_order = [
        event("g-1", "purchase", T0, "gtag-buyer", value=20.0, transaction_id="G", **ANONYMOUS),
        event("g-2", "purchase", T0 + S, "gtag-again", value=20.0, transaction_id="G",
              **ANONYMOUS),
    ]  # fmt: skip
    landed(tmp_path, settings, [*early, *gtag_order], orders)

    sessions = revenue_of(bare(settings).rows("sessions_this_run"))
    assert sessions["buyer-1001"][0] == sessions["buyer-1002"][0] == Decimal(499)
    assert sessions["attacker-1001"][0] == sessions["attacker-1002"][0] == 0
    assert (sessions["gtag-buyer"][0], sessions["gtag-again"][0]) == (Decimal(20), 0)


def test_an_anonymous_refund_returns_only_an_anonymous_purchase_and_at_most_its_amount(
    tmp_path: Path, bare: BareRunner
) -> None:
    settings = make_settings(tmp_path / "data")
    events = [
        event("o-1", "purchase", T0, "shop", value=499.0, transaction_id="1001"),
        event("o-2", "purchase", T0, "gtag", value=20.0, transaction_id="G", **ANONYMOUS),
        # Anonymous refunds: of the shop's order (whole, and with a value), of nothing,
        # and of the gtag order for more than it was.
        event("r-1", "refund", T0 + S, "cancel-all", transaction_id="1001", **ANONYMOUS),
        event("r-2", "refund", T0 + S, "cancel-part", value=400.0, transaction_id="1001",
              **ANONYMOUS),
        event("r-3", "refund", T0 + S, "no-order", value=50.0, **ANONYMOUS),
        event("r-4", "refund", T0 + S, "gtag-refund", value=500.0, transaction_id="G",
              **ANONYMOUS),
        # The shop's own refund of its order, without a value: the whole purchase.
        event("r-5", "refund", T0 + 2 * S, "shop-refund", transaction_id="1001"),
    ]  # fmt: skip
    landed(tmp_path, settings, events)

    refunds = {v: r for v, (_, r) in revenue_of(bare(settings).rows("sessions_this_run")).items()}
    assert refunds["cancel-all"] == refunds["cancel-part"] == refunds["no-order"] == 0
    assert refunds["gtag-refund"] == Decimal(20)
    assert refunds["shop-refund"] == Decimal(499)


def test_anonymous_refunds_of_a_transaction_return_at_most_its_purchase_in_total(
    tmp_path: Path, bare: BareRunner
) -> None:
    settings = make_settings(tmp_path / "data")
    events = [
        event("o-1", "purchase", T0, "shop", value=499.0, transaction_id="1001"),
        event("o-2", "purchase", T0, "anon-buyer", value=400.0, transaction_id="T-2",
              **ANONYMOUS),
        # Five whole refunds of the anonymous order, and one with a value: together they
        # return the order once. The first (by event_ts, event_id) takes it all.
        *[
            event(f"r-{n}", "refund", T0 + n * S, f"refunder-{n}", transaction_id="T-2",
                  **ANONYMOUS)
            for n in range(1, 6)
        ],
        event("r-6", "refund", T0 + 6 * S, "refunder-6", value=100.0, transaction_id="T-2",
              **ANONYMOUS),
        # Partial refunds of another anonymous order: 30 + 30 of 50 returns 30 + 20.
        event("o-3", "purchase", T0, "anon-buyer-2", value=50.0, transaction_id="T-3",
              **ANONYMOUS),
        event("p-1", "refund", T0 + S, "part-1", value=30.0, transaction_id="T-3", **ANONYMOUS),
        event("p-2", "refund", T0 + 2 * S, "part-2", value=30.0, transaction_id="T-3",
              **ANONYMOUS),
        # The shop's own refunds keep their rules: each as it says.
        event("s-1", "refund", T0 + S, "shop-refund-1", value=300.0, transaction_id="1001"),
        event("s-2", "refund", T0 + 2 * S, "shop-refund-2", value=300.0, transaction_id="1001"),
    ]  # fmt: skip
    landed(tmp_path, settings, events)

    refunds = {v: r for v, (_, r) in revenue_of(bare(settings).rows("sessions_this_run")).items()}
    assert refunds["refunder-1"] == Decimal(400)
    assert [refunds[f"refunder-{n}"] for n in range(2, 7)] == [0] * 5
    assert (refunds["part-1"], refunds["part-2"]) == (Decimal(30), Decimal(20))
    assert refunds["shop-refund-1"] == refunds["shop-refund-2"] == Decimal(300)


def test_lake_files_without_trust_are_authenticated_and_still_build(tmp_path: Path) -> None:
    """A lake file written before `trust` existed (no such column) is read in today's
    schema: its events are authenticated, so an anonymous purchase of their transaction
    loses to them, and the day builds."""
    settings = make_settings(tmp_path / "data")
    old = event("order-1", "purchase", T0 + S, "buyer", value=499.0, transaction_id="1")
    import_events(settings, [old], tmp_path / "old.jsonl")
    for path in LakeLayout(settings.lake_dir).event_files():
        pq.write_table(pq.read_table(path).drop_columns(["trust"]), path)
    squatter = event("pre-1", "purchase", T0, "attacker", value=0.01, transaction_id="1",
                     **ANONYMOUS)  # fmt: skip
    import_events(settings, [squatter], tmp_path / "new.jsonl")
    files = LakeLayout(settings.lake_dir).event_files()
    assert sorted("trust" in pq.read_schema(path).names for path in files) == [False, True]

    build_day(settings, DAY)
    assert shop_revenue(settings) == [(Decimal(499),)]


def test_an_amount_beyond_the_warehouse_decimal_is_flagged_not_a_failed_build(
    tmp_path: Path,
) -> None:
    """Validation bounds each value when it arrives; a rate raised since can still take
    its converted amount past DECIMAL(18, 4): it is left out of the sums and flagged."""
    settings = make_settings(tmp_path / "data")
    events = [
        event("big", "purchase", T0, "buyer", value=1_000_000.0, currency="EUR"),
        event("small", "purchase", T0, "other", value=2.0, currency="USD"),
    ]
    import_events(settings, events, tmp_path / "events.jsonl")
    built = build_day(settings.model_copy(update={"currency_rates": {"EUR": 1e12}}), DAY)
    assert built.unconverted_values == 1
    assert shop_revenue(settings) == [(Decimal(2),)]
