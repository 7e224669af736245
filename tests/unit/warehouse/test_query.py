from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import SessionflowError
from pipeline.warehouse.query import render, run_query
from tests.conftest import clean_env, run_cli


@pytest.fixture
def marts(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "marts"
    for day, sessions, cost in ((date(2026, 11, 1), 100, 80.0), (date(2026, 11, 2), 0, 5.0)):
        path = root / "daily_site_summary" / f"date={day.isoformat()}" / "data.parquet"
        path.parent.mkdir(parents=True)
        table = pa.table(
            {
                "site_id": ["shop.example"],
                "sessions": pa.array([sessions], pa.int64()),
                "cost": [cost],
                "cost_per_session": [cost / sessions if sessions else None],
            }
        )
        pq.write_table(table, path)
    return root


def test_formats(marts: Path) -> None:
    result = run_query(
        marts, "SELECT date, sessions, cost_per_session FROM daily_site_summary ORDER BY date"
    )
    assert json.loads(render(result, "json")) == [
        {"date": "2026-11-01", "sessions": 100, "cost_per_session": 0.8},
        {"date": "2026-11-02", "sessions": 0, "cost_per_session": None},
    ]
    assert render(result, "csv").splitlines() == [
        "date,sessions,cost_per_session",
        "2026-11-01,100,0.8",
        "2026-11-02,0,",
    ]
    table = render(result, "table").splitlines()
    assert table[0].split() == ["date", "sessions", "cost_per_session"]
    assert table[2].split() == ["2026-11-01", "100", "0.8"]
    assert table[3].split() == ["2026-11-02", "0", "NULL"]
    assert table[-1] == "(2 rows)"


@pytest.mark.parametrize(
    "sql",
    [
        "DROP VIEW daily_site_summary",
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "SELECT 1; SELECT 2",
        "SELEC 1",
        "SELECT * FROM no_such_table",
    ],
)
def test_only_one_read_statement_with_a_one_line_error(marts: Path, sql: str) -> None:
    with pytest.raises(SessionflowError) as caught:
        run_query(marts, sql)
    assert "\n" not in str(caught.value)


def test_cli(marts: Path) -> None:
    env = clean_env(SESSIONFLOW_DATA_DIR=str(marts.parent))
    result = run_cli(
        env, "query", "--format", "json", "SELECT sum(sessions) AS s FROM daily_site_summary"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"s": 100}]
    bad = run_cli(env, "query", "DELETE FROM daily_site_summary")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "Error: only read queries are allowed (got delete)"


def test_json_has_null_where_a_number_is_nan_or_infinite(marts: Path) -> None:
    result = run_query(
        marts,
        "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, [1.5, '-inf'::DOUBLE] AS c, 2.5 AS d",
    )
    text = render(result, "json")
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == [{"a": None, "b": None, "c": [1.5, None], "d": 2.5}]


def test_csv_guards_text_cells_and_leaves_numbers(marts: Path) -> None:
    result = run_query(marts, "SELECT '=1+1' AS f, '-5' AS t, -5 AS n, 'a\x1bb' AS e")
    assert render(result, "csv").splitlines() == ["f,t,n,e", "'=1+1,'-5,-5,a\\x1bb"]
