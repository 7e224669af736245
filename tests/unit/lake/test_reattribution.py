"""Lake files from before attribution was stored: the build refuses them with one line,
`sessionflow reattribute` brings them up to the current rules, rows otherwise unchanged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_settings
from pipeline.errors import SessionflowError
from pipeline.lake.paths import LakeLayout
from pipeline.lake.reattribution import needs_reattribution, reattribute_lake
from pipeline.lake.store import events_to_table, to_lake_rows
from pipeline.sessions.attribution import OUTPUTS, RULES_VERSION
from pipeline.sessions.sessionizer import Sessionizer, SessionRules
from pipeline.warehouse.build import build_day
from tests.conftest import clean_env, run_cli

DAY = date(2026, 11, 1)


def current_rows() -> pa.Table:
    events = [
        {"event_id": "a", "event_name": "page_view", "event_ts": "2026-11-01T10:00:00Z",
         "site_id": "shop.example", "visitor_id": "v1", "utm_source": "google",
         "utm_medium": "cpc", "utm_campaign": "may"},
        {"event_id": "b", "event_name": "page_view", "event_ts": "2026-11-01T11:00:00Z",
         "site_id": "shop.example", "visitor_id": "v2",
         "page_referrer": "https://www.bing.com/search?q=x"},
    ]  # fmt: skip
    sessionizer = Sessionizer(SessionRules())
    sessionizer.add(events_to_table(events))
    released = sessionizer.release(final=True)
    assert released is not None
    return to_lake_rows(released, datetime(2026, 11, 2, tzinfo=UTC))


def write_old_file(layout: LakeLayout) -> Path:
    """A file as the lake held them before attribution was stored: channel_group only."""
    path = layout.event_file(DAY, "old")
    path.parent.mkdir(parents=True)
    old = current_rows().drop_columns(["source", "medium", "attribution_rules"])
    pq.write_table(old, path)
    return path


def test_an_old_file_is_refused_by_the_build_then_reattributed(tmp_path: Path) -> None:
    settings = load_settings(environ={"SESSIONFLOW_DATA_DIR": str(tmp_path / "data")})
    layout = LakeLayout(settings.lake_dir)
    path = write_old_file(layout)
    assert needs_reattribution(path)

    with pytest.raises(SessionflowError, match="run `sessionflow reattribute`") as refused:
        build_day(settings, DAY)
    assert "\n" not in str(refused.value)

    result = run_cli(clean_env(SESSIONFLOW_DATA_DIR=str(settings.data_dir)), "reattribute")
    assert result.returncode == 0, result.stderr
    assert "reattributed 2 events in 1 lake files" in result.stdout

    rewritten = pq.ParquetFile(path).read()
    assert rewritten.equals(current_rows())
    assert rewritten["attribution_rules"].to_pylist() == [RULES_VERSION] * 2
    assert rewritten.select(list(OUTPUTS[:2])).to_pylist() == [
        {"source": "google", "medium": "cpc"},
        {"source": "bing", "medium": "organic"},
    ]
    assert not needs_reattribution(path)
    assert reattribute_lake(layout, settings.consumer_state_dir).files == 0
    assert build_day(settings, DAY).rows["sessions"] == 2
