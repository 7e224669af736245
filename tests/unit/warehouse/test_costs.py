"""Marketing costs into the warehouse: validation, replacement per group, all-or-nothing."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import Settings
from pipeline.dev.generator import COST_COLUMNS, GeneratorConfig, generate_costs, write_dataset
from pipeline.errors import SessionflowError
from pipeline.sessions.attribution import campaign_key
from pipeline.warehouse import models
from pipeline.warehouse.costs import CostLoadError, CostRowError, load_costs, read_costs

START = date(2026, 11, 1)
SITES = ("shop.example", "blog.example")

Row = tuple[Any, ...]


def _config(sites: tuple[str, ...] = ("shop.example",)) -> GeneratorConfig:
    return GeneratorConfig(days=3, start=START, events_per_day=50, sites=sites)


def _settings(tmp_path: Path, sites: tuple[str, ...] = ("shop.example",)) -> Settings:
    return Settings(data_dir=tmp_path / "data", sites=list(sites))


def _generated_csv(tmp_path: Path, sites: tuple[str, ...] = ("shop.example",)) -> Path:
    return write_dataset(_config(sites), tmp_path / "generated").costs_path


def _table(settings: Settings, *, with_loaded_at: bool = False) -> list[Row]:
    if not settings.warehouse_path.exists():
        return []
    columns = "*" if with_loaded_at else "* EXCLUDE (loaded_at)"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"SELECT {columns} FROM marketing_costs ORDER BY ALL").fetchall()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path: Path, rows: list[dict[str, str]], columns: tuple[str, ...]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _expected(config: GeneratorConfig) -> list[Row]:
    """The generator's rows as the warehouse should hold them."""
    return sorted(
        (
            date.fromisoformat(row["date"]),
            row["site_id"],
            row["source"],
            row["medium"],
            campaign_key(row["campaign"]),
            None,
            None,
            None,
            Decimal(f"{row['cost']:.2f}").quantize(Decimal("0.0001")),
            row["currency"],
            row["clicks"],
            row["impressions"],
        )
        for row in generate_costs(config)
    )


# -- loading and replacing ---------------------------------------------------------------------


def test_loads_the_generators_costs_csv(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = _generated_csv(tmp_path)

    result = load_costs(settings, path)

    expected = _expected(_config())
    assert _table(settings) == expected
    assert result.rows_loaded == len(expected)
    assert (result.first_date, result.last_date) == (START, date(2026, 11, 3))
    assert result.groups == len({row[:5] for row in expected})
    assert (result.groups_replaced, result.rows_deleted) == (0, 0)
    assert result.unconverted_currencies == ()
    # One load, one stamp.
    stamps = {row[-1] for row in _table(settings, with_loaded_at=True)}
    assert len(stamps) == 1


def test_the_table_is_created_from_the_shared_ddl_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    load_costs(settings, _generated_csv(tmp_path))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'marketing_costs'"
            ).fetchall()
        )
    assert types["cost"] == "DECIMAL(18,4)"
    assert types["loaded_at"] == "TIMESTAMP WITH TIME ZONE"
    assert list(types) == [*COST_COLUMNS, "loaded_at"]


def test_reloading_the_same_file_leaves_identical_rows(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = _generated_csv(tmp_path)
    first = load_costs(settings, path)
    before = _table(settings)

    again = load_costs(settings, path)

    assert _table(settings) == before  # no duplicates, same values
    assert again.rows_loaded == first.rows_loaded
    assert again.groups_replaced == again.groups == first.groups
    assert again.rows_deleted == first.rows_loaded


def test_reloading_replaces_exactly_the_files_campaign_keys(tmp_path: Path) -> None:
    """GA4's cost import: a file replaces the (date, site, source, medium, campaign) keys it
    holds; a campaign it does not mention keeps its rows."""
    settings = _settings(tmp_path)
    path = _generated_csv(tmp_path)
    load_costs(settings, path)
    before = _table(settings, with_loaded_at=True)

    # google/cpc on the second day: three campaigns. The new file has new costs for two.
    group = [
        row
        for row in _read_csv(path)
        if (row["date"], row["source"], row["medium"]) == ("2026-11-02", "google", "cpc")
    ]
    assert len(group) == 3
    changed = [{**row, "cost": "999.99"} for row in group[:2]]
    load = load_costs(settings, _write_csv(tmp_path / "fix.csv", changed, COST_COLUMNS))

    assert (load.rows_loaded, load.groups, load.groups_replaced, load.rows_deleted) == (2, 2, 2, 2)
    replaced_keys = {
        (date(2026, 11, 2), "google", "cpc", campaign_key(r["campaign"])) for r in changed
    }
    untouched = [r for r in before if (r[0], r[2], r[3], r[4]) not in replaced_keys]
    after = _table(settings, with_loaded_at=True)
    # Everything else, the third google/cpc campaign of that day included, keeps its stamp.
    assert [r for r in after if r in untouched] == untouched
    assert len(after) == len(untouched) + 2
    replaced = sorted(r[:12] for r in after if r not in untouched)
    assert [(r[4], r[8]) for r in replaced] == sorted(
        (campaign_key(row["campaign"]), Decimal("999.9900")) for row in group[:2]
    )


def test_source_medium_and_campaign_are_stored_normalised(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = tmp_path / "costs.csv"
    path.write_text(
        "date,source,medium,campaign,cost,currency\n"
        "2026-11-01, Facebook ,CPC,Spring ,1,USD\n"
        "2026-11-01,google,cpc,,2,USD\n"
    )
    load_costs(settings, path)
    assert [row[2:5] for row in _table(settings)] == [
        ("facebook", "cpc", "spring"),
        ("google", "cpc", "(not set)"),
    ]


def test_groups_are_per_site(tmp_path: Path) -> None:
    settings = _settings(tmp_path, SITES)
    path = _generated_csv(tmp_path, SITES)
    load_costs(settings, path)
    before = _table(settings)

    one_site = [
        row
        for row in _read_csv(path)
        if row["site_id"] == "blog.example" and row["date"] == "2026-11-01"
    ]
    load_costs(settings, _write_csv(tmp_path / "blog.csv", one_site, COST_COLUMNS))

    assert _table(settings) == before  # same values; shop.example rows were not deleted
    assert {row[1] for row in _table(settings)} == set(SITES)


# -- bad rows: reported all, nothing loaded -------------------------------------------------


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_loaded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = _generated_csv(tmp_path)
    load_costs(settings, path)
    before = _table(settings, with_loaded_at=True)

    rows = [{**row, "cost": "1.00"} for row in _read_csv(path)]  # would change every row
    rows[5]["cost"] = "abc"  # line 7 (the header is line 1)
    rows[10]["date"] = "2026-02-30"  # line 12
    rows[20]["currency"] = "usd"  # line 22
    bad = _write_csv(tmp_path / "bad.csv", rows, COST_COLUMNS)

    with pytest.raises(CostLoadError) as raised:
        load_costs(settings, bad)

    assert str(raised.value) == f"3 bad rows in {bad}; nothing loaded"
    assert [error.line() for error in raised.value.errors] == [
        "line 7: cost: 'abc' is not a number",
        "line 12: date: '2026-02-30' is not a valid date",
        "line 22: currency: 'usd' is not an ISO 4217 code (did you mean 'USD'?)",
    ]
    assert _table(settings, with_loaded_at=True) == before


def test_line_numbers_are_physical_lines(tmp_path: Path) -> None:
    # A quoted value spanning two lines and a blank line still count as lines.
    path = tmp_path / "costs.csv"
    path.write_text(
        "date,source,medium,campaign,cost,currency\n"
        '2026-11-01,google,cpc,"two\nlines",1,USD\n'
        "\n"
        "2026-11-01,google,cpc,x,-2,USD\n"
    )
    with pytest.raises(CostLoadError) as raised:
        load_costs(_settings(tmp_path), path)
    assert [str(error) for error in raised.value.errors] == ["line 5: cost: '-2' is negative"]
    assert str(raised.value) == f"1 bad row in {path}; nothing loaded"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("date", "01/11/2026", "'01/11/2026' is not a date in the form YYYY-MM-DD"),
        ("date", "", "is empty but required"),
        ("source", " ", "is empty but required"),
        ("medium", "", "is empty but required"),
        ("cost", "", "is empty but required"),
        ("cost", "1,234.50", "'1,234.50' is not a number"),
        ("cost", "inf", "'inf' is not a finite number"),
        ("cost", "NaN", "'NaN' is not a finite number"),
        ("cost", "-0.01", "'-0.01' is negative"),
        ("cost", "0.12345", "'0.12345' has more than 4 decimal places"),
        (
            "cost",
            "100000000000000",
            "'100000000000000' is too large (at most 14 digits before the point)",
        ),
        ("currency", "", "is empty but required"),
        ("currency", "EURO", "'EURO' is not an ISO 4217 code"),
        ("clicks", "1.5", "'1.5' is not a whole number"),
        ("clicks", "-1", "'-1' is negative"),
        ("impressions", "ten", "'ten' is not a whole number"),
        ("impressions", "99999999999999999999", "'99999999999999999999' is too large"),
        ("site_id", "other.example", "'other.example' is not a configured site (shop.example)"),
    ],
)
def test_row_reasons(tmp_path: Path, column: str, value: str, reason: str) -> None:
    good = {
        "date": "2026-11-01", "site_id": "shop.example", "source": "google", "medium": "cpc",
        "campaign": "", "ad_group": "", "term": "", "content": "", "cost": "1.5",
        "currency": "USD", "clicks": "3", "impressions": "40",
    }  # fmt: skip
    path = _write_csv(tmp_path / "costs.csv", [{**good, column: value}], COST_COLUMNS)
    with pytest.raises(CostLoadError) as raised:
        read_costs(_settings(tmp_path), path)
    assert raised.value.errors == (CostRowError("line 2", column, reason),)


def test_all_problems_of_one_row_are_listed_and_count_as_one_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text("date,source,medium,cost,currency\n2026-11-01,,cpc,x,US\n")
    with pytest.raises(CostLoadError) as raised:
        read_costs(_settings(tmp_path), path)
    assert str(raised.value) == f"1 bad row in {path}; nothing loaded"
    assert [str(error) for error in raised.value.errors] == [
        "line 2: source: is empty but required",
        "line 2: cost: 'x' is not a number",
        "line 2: currency: 'US' is not an ISO 4217 code",
    ]


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text("date,source,medium,cost,currency\n2026-11-01,google,cpc,1\n")
    with pytest.raises(CostLoadError) as raised:
        read_costs(_settings(tmp_path), path)
    assert [str(e) for e in raised.value.errors] == ["line 2: expected 5 fields, got 4"]


def test_duplicate_rows_in_one_file_are_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(
        "date,source,medium,campaign,cost,currency\n"
        "2026-11-01,google,cpc,brand,1,USD\n"
        "2026-11-01,google,cpc,generic,2,USD\n"
        "2026-11-01,google,cpc, brand ,3,USD\n"  # the same campaign once blanks are gone
    )
    with pytest.raises(CostLoadError) as raised:
        load_costs(_settings(tmp_path), path)
    assert [str(e) for e in raised.value.errors] == [
        "line 4: duplicate of line 2 "
        "(same date, site_id, source, medium, campaign, ad_group, term, content)"
    ]
    assert _table(_settings(tmp_path)) == []


def test_optional_columns_and_exact_decimals(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(
        "\ufeffdate,source,medium,campaign,term,cost,currency,clicks\n"  # BOM from Excel
        "2026-11-01, google ,cpc,,,0.1,EUR,\n"
        "2026-11-02,google,cpc,brand,shoes,12.3456,EUR,7\n"
    )
    settings = _settings(tmp_path)
    result = load_costs(settings, path)
    assert _table(settings) == [
        (date(2026, 11, 1), "shop.example", "google", "cpc", "(not set)", None, None, None,
         Decimal("0.1000"), "EUR", None, None),
        (date(2026, 11, 2), "shop.example", "google", "cpc", "brand", None, "shoes", None,
         Decimal("12.3456"), "EUR", 7, None),
    ]  # fmt: skip
    # No EUR rate is configured: the CLI can warn that these costs stay out of the sums.
    assert result.unconverted_currencies == ("EUR",)
    rated = Settings(data_dir=tmp_path / "d2", currency_rates={"EUR": 1.08})
    assert load_costs(rated, path).unconverted_currencies == ()


def test_a_file_with_only_a_header_loads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(",".join(COST_COLUMNS) + "\n")
    settings = _settings(tmp_path)
    result = load_costs(settings, path)
    assert (result.rows_loaded, result.first_date, result.groups) == (0, None, 0)
    assert not settings.warehouse_path.exists()


# -- header and file errors -------------------------------------------------------------------


def _header_error(tmp_path: Path, text: str, settings: Settings | None = None) -> str:
    path = tmp_path / "costs.csv"
    path.write_text(text)
    settings = settings or _settings(tmp_path)
    with pytest.raises(SessionflowError) as raised:
        load_costs(settings, path)
    assert not isinstance(raised.value, CostLoadError)
    assert not settings.warehouse_path.exists()
    message = str(raised.value)
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


def test_missing_cost_column(tmp_path: Path) -> None:
    message = _header_error(tmp_path, "date,source,medium,currency\n2026-11-01,g,cpc,USD\n")
    assert message == "missing required columns: 'cost'; nothing loaded"


def test_unknown_column(tmp_path: Path) -> None:
    message = _header_error(
        tmp_path, "date,source,medium,cost,currency,spend\n2026-11-01,g,cpc,1,USD,2\n"
    )
    assert message == (
        "unknown columns: 'spend' (expected: date, site_id, source, medium, campaign, "
        "ad_group, term, content, cost, currency, clicks, impressions); nothing loaded"
    )


def test_header_problems_are_reported_together(tmp_path: Path) -> None:
    message = _header_error(tmp_path, "date,source,source,Cost,currency\n")
    assert message.startswith(
        "duplicate columns: 'source'; missing required columns: 'medium', 'cost'; "
        "unknown columns: 'Cost' (expected: "
    )


def test_site_id_is_required_when_two_sites_are_configured(tmp_path: Path) -> None:
    settings = _settings(tmp_path, SITES)
    message = _header_error(
        tmp_path, "date,source,medium,cost,currency\n2026-11-01,g,cpc,1,USD\n", settings
    )
    assert message == (
        "missing required columns: 'site_id' "
        "(site_id is required when more than one site is configured); nothing loaded"
    )

    path = tmp_path / "sites.csv"
    path.write_text(
        "date,site_id,source,medium,cost,currency\n"
        "2026-11-01,shop.example,g,cpc,1,USD\n"
        "2026-11-01,,g,cpc,1,USD\n"
    )
    with pytest.raises(CostLoadError) as raised:
        load_costs(settings, path)
    assert [str(e) for e in raised.value.errors] == [
        "line 3: site_id: is empty; required when more than one site is configured"
    ]


def test_site_id_defaults_to_the_only_site(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text("date,source,medium,cost,currency\n2026-11-01,g,cpc,1,USD\n")
    settings = _settings(tmp_path)
    load_costs(settings, path)
    assert [row[1] for row in _table(settings)] == ["shop.example"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("costs.xlsx", "x", "cannot load costs from {path}: expected a .csv or .parquet file"),
        ("empty.csv", "", "{path} is empty: expected a header row naming the columns"),
        ("latin1.csv", b"date,source\n2026-11-01,caf\xe9\n", "{path} is not UTF-8 text"),
        ("junk.parquet", "junk", "{path} is not a readable Parquet file: "),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str | bytes, message: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(SessionflowError) as raised:
        load_costs(_settings(tmp_path), path)
    assert str(raised.value).startswith(message.format(path=path))
    assert "\n" not in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SessionflowError, match=r"^costs file not found: "):
        load_costs(_settings(tmp_path), tmp_path / "nope.csv")


# -- Parquet ---------------------------------------------------------------------------------


def test_parquet_loads_the_same_as_csv(tmp_path: Path) -> None:
    csv_settings = _settings(tmp_path / "a")
    path = _generated_csv(tmp_path)
    load_costs(csv_settings, path)

    # Typed columns, as a Parquet export would have them: dates, float costs, integers.
    rows = generate_costs(_config())
    table = pa.Table.from_pylist(
        [{**row, "date": date.fromisoformat(row["date"])} for row in rows],
        schema=pa.schema(
            [
                ("date", pa.date32()), ("site_id", pa.string()), ("source", pa.string()),
                ("medium", pa.string()), ("campaign", pa.string()), ("ad_group", pa.string()),
                ("term", pa.string()), ("content", pa.string()), ("cost", pa.float64()),
                ("currency", pa.string()), ("clicks", pa.int64()), ("impressions", pa.int64()),
            ]
        ),
    )  # fmt: skip
    parquet = tmp_path / "costs.parquet"
    pq.write_table(table, parquet)
    parquet_settings = _settings(tmp_path / "b")
    result = load_costs(parquet_settings, parquet)

    assert result.rows_loaded == len(rows)
    assert _table(parquet_settings) == _table(csv_settings) == _expected(_config())
    again = load_costs(parquet_settings, parquet)
    assert again.rows_deleted == len(rows)
    assert _table(parquet_settings) == _table(csv_settings)


def test_parquet_bad_rows_are_numbered_rows(tmp_path: Path) -> None:
    table = pa.table(
        {
            "date": pa.array(["2026-11-01", "2026-11-01", "2026-11-02"]),
            "source": ["google", "google", "bing"],
            "medium": ["cpc", "cpc", "cpc"],
            "campaign": ["a", "b", "c"],
            "cost": pa.array([Decimal("1.5"), Decimal("-1"), None], pa.decimal128(10, 2)),
            "currency": ["USD", "USD", "USD"],
            "clicks": pa.array([1.0, float("nan"), 2.5]),
        }
    )
    path = tmp_path / "costs.parquet"
    pq.write_table(table, path)
    settings = _settings(tmp_path)
    with pytest.raises(CostLoadError) as raised:
        load_costs(settings, path)
    assert str(raised.value) == f"2 bad rows in {path}; nothing loaded"
    assert [str(e) for e in raised.value.errors] == [
        "row 2: cost: -1.00 is negative",
        "row 3: cost: is empty but required",
        "row 3: clicks: 2.5 is not a whole number",
    ]
    assert _table(settings) == []


def test_parquet_header_errors(tmp_path: Path) -> None:
    path = tmp_path / "costs.parquet"
    pq.write_table(pa.table({"date": ["2026-11-01"], "source": ["g"], "fee": [1]}), path)
    with pytest.raises(SessionflowError, match="missing required columns: 'medium', 'cost', "):
        load_costs(_settings(tmp_path), path)


# -- all or nothing ---------------------------------------------------------------------------


def test_a_crash_mid_transaction_leaves_the_previous_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    path = _generated_csv(tmp_path)
    load_costs(settings, path)
    before = _table(settings, with_loaded_at=True)
    changed = [{**row, "cost": "0"} for row in _read_csv(path)]
    changed_path = _write_csv(tmp_path / "changed.csv", changed, COST_COLUMNS)

    real_run = models.run_sql_model

    def replace_then_crash(con: duckdb.DuckDBPyConnection, name: str, params: Any = None) -> None:
        real_run(con, name, params)
        if name == "publish/replace_costs":  # the old rows deleted, the new ones inserted...
            raise RuntimeError("simulated crash before commit")  # ...and then it dies

    monkeypatch.setattr("pipeline.warehouse.costs.run_sql_model", replace_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load_costs(settings, changed_path)

    assert _table(settings, with_loaded_at=True) == before


def test_a_database_error_is_one_line_and_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path)
    path = _generated_csv(tmp_path)
    load_costs(settings, path)
    before = _table(settings, with_loaded_at=True)

    real_run = models.run_sql_model

    def failing_insert(con: duckdb.DuckDBPyConnection, name: str, params: Any = None) -> None:
        if name != "publish/replace_costs":
            real_run(con, name, params)
        else:
            con.execute("INSERT INTO marketing_costs (date) VALUES (NULL)")  # NOT NULL violated

    monkeypatch.setattr("pipeline.warehouse.costs.run_sql_model", failing_insert)
    with pytest.raises(SessionflowError) as raised:
        load_costs(settings, path)
    message = str(raised.value)
    assert message.startswith(f"could not load {path} into {settings.warehouse_path}: ")
    assert message.endswith("; nothing loaded")
    assert "\n" not in message
    assert _table(settings, with_loaded_at=True) == before
