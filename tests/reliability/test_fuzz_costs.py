"""Fuzzing `costs load` (CSV and Parquet): every file is loaded or refused by name (a
SessionflowError with one line, a CostLoadError listing bad rows one line each), never
another exception; a refused file leaves the warehouse as it was."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.errors import SessionflowError
from pipeline.warehouse.cost_schema import COLUMNS
from pipeline.warehouse.costs import CostLoadError, load_costs, read_costs
from tests.reliability.support import Outcomes, assert_one_line, fuzz_settings

OUTCOMES = Outcomes()
SITES = ("shop.example",)

HOSTILE_CELLS = [
    "", " ", "\t", "NaN", "nan", "-NaN", "Infinity", "-inf", "+Inf", "1e400", "1e3", "1E-2",
    "1,234.50", "-0", "-0.0", "0.00001", "0.0001", "12 USD", "$12", "0x10", "1_000", "9" * 14,
    "9" * 15, "9" * 5000, "-" + "9" * 5000, str(2**63), str(2**63 - 1), str(-(2**63)),
    "\u0661\u0662\u0663", "\uff11\uff12", "\u00b2", "\u0663.\u0665", "usd", "USD", "EUR", "\uff35\uff33\uff24", "XXX", "US", "USDD",
    "2026-11-01", "2026-02-30", "2026-13-45", "0000-01-01", "9999-12-31", "2026-11-01T00:00",
    "\uff12\uff10\uff12\uff16-\uff11\uff11-\uff10\uff11", "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0660\u0661", "20261101", "../../etc", "/etc/passwd",
    "shop.example", "SHOP.EXAMPLE", " shop.example ", "sh\u043ep.example", "shop.example\u200b",
    "shop.example' OR 1=1 --", "'; DROP TABLE marketing_costs; --", "=cmd|' /C calc'!A0",
    "\x00", "a\x00b", "\u202etxt.exe", "\ufeff", "\ud800", "x" * 200_000, "\n", '"', "\r\n",
    "google", "cpc", "(not set)", "(direct)",
]  # fmt: skip
cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS),
    st.text(max_size=12),
    st.integers().map(str),
    st.floats().map(repr),
    st.decimals(allow_nan=True).map(str),
)
valid_row = st.fixed_dictionaries(
    {
        "date": st.dates(date(2000, 1, 1), date(2030, 12, 31)).map(date.isoformat),
        "site_id": st.sampled_from([*SITES, ""]),
        "source": st.sampled_from(["google", "bing", " Meta "]),
        "medium": st.sampled_from(["cpc", "display"]),
        "campaign": st.sampled_from(["", "brand", "Brand "]),
        "cost": st.decimals(0, 10**6, places=2).map(str),
        "currency": st.sampled_from(["USD", "EUR"]),
        "clicks": st.sampled_from(["", "0", "17"]),
    }
)
header_names = st.sampled_from(
    [*COLUMNS, "Date", " cost ", "cost\x00", "", "co\u00fbt", "site_\u0456d", "../cost", "date"]
)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data = tmp_path_factory.mktemp("fuzz-costs")
    yield load_settings(
        environ={"SESSIONFLOW_DATA_DIR": str(data), "SESSIONFLOW_SITES": str(list(SITES))}
    )
    print("\n" + OUTCOMES.line("costs load"))


def attempt(settings: Settings, path: Path, kind: str) -> None:
    """Load the file; a refusal must be named and leave the warehouse untouched."""
    try:
        loaded = load_costs(settings, path)
    except CostLoadError as failure:
        assert_one_line(failure)
        assert failure.errors
        for error in failure.errors:
            assert "\n" not in error.line() and "\r" not in error.line(), error
        OUTCOMES.add(f"{kind} rejected rows")
    except SessionflowError as failure:
        assert_one_line(failure)
        OUTCOMES.add(f"{kind} rejected file")
    else:
        assert loaded.rows_loaded == len(read_costs(settings, path))
        OUTCOMES.add(f"{kind} accepted")


def attempt_read(settings: Settings, path: Path, kind: str) -> None:
    """`attempt` without the warehouse for most accepted files: every refusal comes from
    reading and validating, and a load into DuckDB costs ~0.1 s on a loaded machine."""
    try:
        rows = read_costs(settings, path)
    except SessionflowError:
        attempt(settings, path, kind)  # the same refusal, through the public entry point
        return
    global _ACCEPTED
    _ACCEPTED += 1
    if _ACCEPTED % 10 == 1:
        attempt(settings, path, kind)
    else:
        assert all(row.cost >= 0 for row in rows)
        OUTCOMES.add(f"{kind} accepted")


_ACCEPTED = 0


def csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@fuzz_settings(400)
@given(data=st.binary(max_size=400), bom=st.booleans())
def test_raw_bytes(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, data: bytes, bom: bool
) -> None:
    path = tmp_path_factory.mktemp("raw") / "costs.csv"
    path.write_bytes(
        (b"\xef\xbb\xbf" if bom else b"") + b"date,source,medium,cost,currency\n" + data
    )
    attempt_read(settings, path, "csv bytes")


@fuzz_settings(300)
@given(
    header=st.one_of(st.just(list(COLUMNS[:-2])), st.lists(header_names, max_size=8)),
    rows=st.lists(
        st.one_of(valid_row, st.dictionaries(st.sampled_from(COLUMNS), cells)), max_size=4
    ),
    mutations=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(COLUMNS), cells), max_size=3),
    bom=st.booleans(),
)
def test_structured_csv(
    settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    header: list[str],
    rows: list[dict[str, str]],
    mutations: list[tuple[int, str, str]],
    bom: bool,
) -> None:
    for index, column, value in mutations:
        if index < len(rows):
            rows[index] = {**rows[index], column: value}
    table = [header, *([row.get(name, "") for name in header] for row in rows)]
    path = tmp_path_factory.mktemp("csv") / "costs.csv"
    # surrogatepass: a lone surrogate becomes the invalid UTF-8 bytes a broken export has.
    path.write_bytes(
        ("\ufeff" if bom else "").encode() + csv_text(table).encode("utf-8", "surrogatepass")
    )
    attempt_read(settings, path, "csv")


def arrow_column(kind: str) -> tuple[pa.DataType, st.SearchStrategy[Any]]:
    text = st.one_of(
        st.sampled_from([c for c in HOSTILE_CELLS if c != "\ud800"]),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    )
    return {
        "string": (pa.string(), text),
        "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
        "float64": (pa.float64(), st.floats()),
        "bool": (pa.bool_(), st.booleans()),
        "date32": (pa.date32(), st.dates()),
        "timestamp": (pa.timestamp("us"), st.datetimes()),
        "timestamp_tz": (
            pa.timestamp("ms", tz="Europe/Berlin"),
            st.datetimes(timezones=st.just(UTC)),
        ),
        "decimal": (pa.decimal128(38, 10), st.decimals(-(10**20), 10**20, places=10)),
        "binary": (pa.binary(), st.binary(max_size=8)),
        "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
        "struct": (pa.struct([("a", pa.string())]), st.fixed_dictionaries({"a": text})),
        "null": (pa.null(), st.none()),
    }[kind]


KINDS = ["string", "int64", "float64", "bool", "date32", "timestamp", "timestamp_tz", "decimal", "binary", "list", "struct", "null"]  # fmt: skip


@st.composite
def arrow_tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(st.sampled_from([*COLUMNS, "extra", "Cost"]), unique=True, max_size=9))
    if draw(st.booleans()):  # mostly the required columns, so rows get looked at
        names = list(dict.fromkeys(["date", "source", "medium", "cost", "currency", *names]))
    n = draw(st.integers(0, 3))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(KINDS))
        if name in ("source", "medium", "currency") and draw(st.booleans()):
            kind = "string"
        data_type, values = arrow_column(kind)
        columns[name] = pa.array(
            draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n)), type=data_type
        )
    return pa.table(columns) if columns else pa.table({})


@fuzz_settings(120)
@given(table=arrow_tables())
def test_parquet(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, table: pa.Table
) -> None:
    path = tmp_path_factory.mktemp("pq") / "costs.parquet"
    pq.write_table(table, path)
    attempt_read(settings, path, "parquet")


CORPUS: dict[str, bytes] = {
    "empty": b"",
    "bom only": b"\xef\xbb\xbf",
    "header only": b"date,source,medium,cost,currency\n",
    "nul bytes": b"date,source,medium,cost,currency\n\x00\x00\x00\n",
    "invalid utf-8": b"date,source,medium,cost,currency\n2026-11-01,g\xffoogle,cpc,1,USD\n",
    "lone surrogate": "date,source,medium,cost,currency\n2026-11-01,\ud800,cpc,1,USD\n".encode("utf-8", "surrogatepass"),
    "10 MB field": b"date,source,medium,cost,currency\n2026-11-01," + b"g" * (10 << 20) + b",cpc,1,USD\n",
    "10 MB quoted field": b'date,source,medium,cost,currency\n2026-11-01,"' + b"g\n" * (5 << 20) + b'",cpc,1,USD\n',
    "unterminated quote": b'date,source,medium,cost,currency\n2026-11-01,"google,cpc,1,USD\n',
    "huge integer": b"date,source,medium,cost,currency,clicks\n2026-11-01,g,cpc,1,USD," + b"9" * 100_000 + b"\n",
    "non-finite": b"date,source,medium,cost,currency\n2026-11-01,g,cpc,NaN,USD\n2026-11-02,g,cpc,Infinity,USD\n",
    "duplicate columns": b"date,date,source,medium,cost,currency\n2026-11-01,2026-11-02,g,cpc,1,USD\n",
    "confusable digits": "date,source,medium,cost,currency,clicks\n2026-11-01,g,cpc,\u0661\u0662\u0663,USD,\uff11\uff12\n".encode(),
    "confusable site": "date,site_id,source,medium,cost,currency\n2026-11-01,sh\u043ep.example,g,cpc,1,USD\n".encode(),
    "injection site": b"date,site_id,source,medium,cost,currency\n2026-11-01,shop.example' OR 1=1 --,g,cpc,1,USD\n",
    "traversal site": b"date,site_id,source,medium,cost,currency\n2026-11-01,../x,g,cpc,1,USD\n",
    "json, not csv": b'{"date": "2026-11-01", "cost": 1}\n',
    "deep json": b"[" * 10_000 + b"]" * 10_000,
    "utf-16": "date,source,medium,cost,currency\n".encode("utf-16"),
    "cr only": b"date,source,medium,cost,currency\r2026-11-01,g,cpc,1,USD\r",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus(settings: Settings, tmp_path: Path, name: str) -> None:
    path = tmp_path / "costs.csv"
    path.write_bytes(CORPUS[name])
    attempt(settings, path, "corpus")
    if name.startswith(("confusable", "injection", "traversal", "non-finite", "huge")):
        with pytest.raises(SessionflowError):  # a look-alike is not the real thing
            read_costs(settings, path)


def test_confusable_digits_are_not_numbers(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_text(
        "date,source,medium,cost,currency,clicks\n2026-11-01,g,cpc,\uff11\uff12.\uff15,USD,\u0663\n"
    )
    with pytest.raises(CostLoadError) as caught:
        read_costs(settings, path)
    assert [error.column for error in caught.value.errors] == ["cost", "clicks"]
    assert Decimal("\uff11\uff12.\uff15") == Decimal("12.5")  # what the loader took it for before
