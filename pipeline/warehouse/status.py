"""What `sessionflow status` says of the warehouse: the days built, which are stale and
why, and the loaded costs' range per site."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from pipeline.config import Settings
from pipeline.duckdb_connections import connect
from pipeline.warehouse.manifest import DayState, plan_days, recorded
from pipeline.warehouse.models import query_sql_model


@dataclass(frozen=True)
class WarehouseStatus:
    days: list[DayState] = field(default_factory=list)  # every built day
    costs: list[dict[str, Any]] = field(default_factory=list)  # per site: first/last date
    busy: str | None = None  # set when another process holds the warehouse

    def lines(self) -> list[str]:
        if self.busy:
            return [f"warehouse: busy ({self.busy}); built days unknown until it finishes"]
        stale = [state for state in self.days if state.stale]
        lines = [
            f"days built: {len(self.days)}"
            + (f" ({self.days[0].day}..{self.days[-1].day})" if self.days else "")
            + f", {len(stale)} stale"
        ]
        lines += [f"  stale {state.day}: {state.reason()}" for state in stale]
        if stale:
            lines.append(
                f"  rebuild them: sessionflow backfill --start {stale[0].day} --end {stale[-1].day}"
            )
        for row in self.costs:
            lines.append(
                f"costs {row['site_id']}: {row['first_date']}..{row['last_date']} "
                f"({row['rows']} rows)"
            )
        if not self.costs:
            lines.append("costs: none loaded")
        return lines


def warehouse_status(settings: Settings) -> WarehouseStatus:
    if not settings.warehouse_path.exists():
        return WarehouseStatus()
    try:
        con = connect(settings, settings.warehouse_path, read_only=True)
    except duckdb.IOException:
        lock = settings.data_dir / "warehouse.lock"
        holder = lock.read_text().strip() if lock.exists() else "another process"
        return WarehouseStatus(busy=holder or "another process")
    with con:
        if not _has_manifest(con):
            return WarehouseStatus()
        built: list[date] = sorted(recorded(con))
        return WarehouseStatus(
            days=plan_days(settings, con, built, force=False, read_only=True),
            costs=query_sql_model(con, "checks/cost_ranges").to_pylist(),
        )


def _has_manifest(con: duckdb.DuckDBPyConnection) -> bool:
    names = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    return {"build_manifest", "marketing_costs"} <= names
