"""Fuzzing `import` (JSON Lines and Parquet): every record is accepted or rejected with a
reason (kept under lake/rejected/), a file that cannot be read at all is one
SessionflowError, and valid lines beside bad ones in the same file still land."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.errors import SessionflowError
from pipeline.lake.importer import ImportReport, import_file
from pipeline.lake.store import events_to_table
from tests.reliability.support import Outcomes, assert_one_line, fuzz_settings

OUTCOMES = Outcomes()
_ids = itertools.count()
FIELDS = [
    "event_id", "event_name", "event_ts", "site_id", "visitor_id", "session_id", "user_id",
    "page_url", "page_referrer", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "click_id_type", "device_category", "browser", "os", "country", "value",
    "currency", "transaction_id", "engagement_time_ms", "visitor_scope",
]  # fmt: skip


def valid_event(tag: str) -> dict[str, Any]:
    """A valid event on a day of its own (so the lake lookup of each import stays small)."""
    n = next(_ids)
    stamp = datetime(2020, 1, 1, 12, tzinfo=UTC) + timedelta(days=n % 2000, seconds=n)
    return {
        "event_id": f"{tag}-{n}", "event_name": "page_view",
        "event_ts": stamp.isoformat().replace("+00:00", "Z"), "site_id": "shop.example",
        "visitor_id": f"v{n}", "page_url": "https://shop.example/?utm_source=x",
    }  # fmt: skip


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
        st.sampled_from(["", "../x", "sh\u043ep.example", "shop.example' OR 1=1 --", "\x00", "\ud800",
                         "2026-11-01T00:00:00Z", "1970-01-01T00:00:00+99:00", "9999-12-31T23:59:59Z",
                         "USD", "usd", "purchase", 10**30, -(2**63), 2**64, 1e308, -0.0]),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    event = valid_event("fuzz")
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "delete", "add"]))
        name = draw(st.sampled_from(FIELDS))
        if action == "set":
            event[name] = draw(json_values)
        elif action == "delete":
            event.pop(name, None)
        else:
            event[draw(st.text(max_size=6))] = draw(json_values)
    value = draw(st.one_of(st.just(event), json_values))
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))  # NaN/Infinity as JS writes them
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data = tmp_path_factory.mktemp("fuzz-import")
    yield load_settings(environ={"SESSIONFLOW_DATA_DIR": str(data / "data")})
    print("\n" + OUTCOMES.line("import"))


def attempt(settings: Settings, path: Path, kind: str, valid_ids: list[str]) -> ImportReport | None:
    try:
        report = import_file(settings, path, lambda _: None)
    except SessionflowError as error:
        assert_one_line(error)
        assert not valid_ids, f"a file with valid records refused whole: {error}"
        OUTCOMES.add(f"{kind} file rejected")
        return None
    for line in report.reject_lines:
        assert "\n" not in line and "\r" not in line, line
    landed = 0
    if valid_ids:
        assert report.files, "the valid records did not land"
        landed = duckdb.execute(
            "SELECT count(DISTINCT event_id) FROM read_parquet(?::VARCHAR[]) "
            "WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
            [[str(file) for file in report.files], valid_ids],
        ).fetchone()[0]  # type: ignore[index]
    assert landed == len(valid_ids)
    OUTCOMES.add(f"{kind} records rejected", report.rejected)
    taken = report.accepted + report.duplicates_in_file + report.already_in_lake
    OUTCOMES.add(f"{kind} records accepted", taken - len(valid_ids))
    OUTCOMES.add("valid records beside them, landed", len(valid_ids))
    return report


def write_lines(path: Path, lines: list[bytes]) -> list[str]:
    """Writes the lines with a valid event after every third; returns the valid ids."""
    out, ids = [], []
    for index, line in enumerate(lines):
        out.append(line)
        if index % 3 == 0:
            event = valid_event("valid")
            ids.append(event["event_id"])
            out.append(json.dumps(event).encode())
    path.write_bytes(b"\n".join(out) + b"\n")
    return ids


def records(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


@fuzz_settings(60)
@given(lines=st.lists(st.binary(max_size=60), min_size=1, max_size=25))
def test_json_lines_of_any_bytes(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]
) -> None:
    path = tmp_path_factory.mktemp("bytes") / "events.jsonl"
    ids = write_lines(path, lines)
    report = attempt(settings, path, "jsonl bytes", ids)
    assert report is not None
    counted = report.accepted + report.rejected + report.duplicates_in_file + report.already_in_lake
    assert counted == records(path.read_bytes())


@fuzz_settings(60)
@given(lines=st.lists(mutated_line(), min_size=1, max_size=20), bom=st.booleans())
def test_json_lines_of_mutated_events(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], bom: bool
) -> None:
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    ids = write_lines(path, lines)
    if bom:  # a BOM spoils the first line only
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        ids = ids[1:] if lines[0] == b"" else ids
    report = attempt(settings, path, "jsonl events", ids)
    assert report is not None
    counted = report.accepted + report.rejected + report.duplicates_in_file + report.already_in_lake
    assert counted == records(path.read_bytes())


ARROW_TYPES: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "string": (pa.string(), st.text(st.characters(exclude_categories=["Cs"]), max_size=8)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "float64": (pa.float64(), st.floats()),
    "bool": (pa.bool_(), st.booleans()),
    "timestamp": (pa.timestamp("us"), st.datetimes()),
    "timestamp_tz": (pa.timestamp("us", tz="UTC"), st.datetimes(timezones=st.just(UTC))),
    "timestamp_ns": (pa.timestamp("ns"), st.integers(-(2**62), 2**62)),
    "date32": (pa.date32(), st.dates()),
    "binary": (pa.binary(), st.binary(max_size=8)),
    "list": (pa.list_(pa.string()), st.lists(st.text(max_size=3), max_size=2)),
    "struct": (pa.struct([("a", pa.int64()), ("b", pa.string())]),
               st.fixed_dictionaries({"a": st.integers(0, 9), "b": st.text(max_size=3)})),
    "map": (pa.map_(pa.string(), pa.int64()), st.lists(st.tuples(st.text(max_size=3), st.integers(0, 9)), max_size=2)),
    "null": (pa.null(), st.none()),
    "decimal": (pa.decimal128(20, 2), st.decimals(-(10**10), 10**10, places=2)),
}  # fmt: skip


@st.composite
def event_tables(draw: st.DrawFn) -> tuple[pa.Table, list[str]]:
    """A table of valid events with some columns replaced, dropped or added; the ids of the
    rows that still are valid events (when no column was touched)."""
    n = draw(st.integers(1, 4))
    table = events_to_table(
        [
            {**event, "event_ts": event["event_ts"]}
            for event in (valid_event("pq") for _ in range(n))
        ]
    )
    touched = False
    for _ in range(draw(st.integers(0, 3))):
        touched = True
        name = draw(st.sampled_from([*FIELDS, "extra", "nested"]))
        action = draw(st.sampled_from(["replace", "drop"]))
        if action == "drop" and name in table.column_names:
            table = table.drop_columns([name])
            continue
        kind = draw(st.sampled_from(sorted(ARROW_TYPES)))
        data_type, values = ARROW_TYPES[kind]
        if kind == "timestamp_ns":
            column = pa.array(draw(st.lists(values, min_size=n, max_size=n)), pa.int64()).cast(
                data_type
            )
        else:
            column = pa.array(
                draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n)), data_type
            )
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    ids = [] if touched else table.column("event_id").to_pylist()
    return table, ids


@fuzz_settings(60)
@given(drawn=event_tables())
def test_parquet_with_wrong_types_missing_and_nested_columns(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory, drawn: tuple[pa.Table, list[str]]
) -> None:
    table, ids = drawn
    path = tmp_path_factory.mktemp("pq") / "events.parquet"
    pq.write_table(table, path)
    report = attempt(settings, path, "parquet", ids)
    if report is not None:
        counted = (
            report.accepted + report.rejected + report.duplicates_in_file + report.already_in_lake
        )
        assert counted == table.num_rows


def corpus() -> dict[str, bytes]:
    good = json.dumps(valid_event("corpus"))
    return {
        "deep nesting": b"[" * 10_000 + b"]" * 10_000,
        "deep objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "10 MB string": json.dumps({**valid_event("big"), "page_url": "x" * (10 << 20)}).encode(),
        "2 MB line": json.dumps({**valid_event("big"), "user_id": "y" * (2 << 20)}).encode(),
        "lone surrogate escaped": json.dumps({**valid_event("s"), "site_id": "\ud800"}).encode(),
        "lone surrogate in id": b'{"event_id": "\\udc80", "event_name": "page_view"}',
        "invalid utf-8": b'{"event_id": "\xff", "event_name": "page_view"}',
        "nan and infinity": json.dumps(
            {**valid_event("n"), "value": math.nan, "currency": "USD"}
        ).encode()
        + b"\n"
        + json.dumps({**valid_event("i"), "engagement_time_ms": math.inf}).encode(),
        "huge integers": json.dumps({**valid_event("h"), "engagement_time_ms": 10**200}).encode()
        + b"\n"
        + b'{"event_id": "x", "value": '
        + b"9" * 5000
        + b"}",
        "huge timestamp": json.dumps({**valid_event("t"), "event_ts": 2**70}).encode(),
        "duplicate keys": good[:-1].encode() + b', "event_id": "dup-key", "event_name": "x y"}',
        "bom": b"\xef\xbb\xbf" + good.encode(),
        "nul bytes": b"\x00" * 1000,
        "not json": b"<html></html>",
        "array of events": ("[" + good + "]").encode(),
        "crlf": good.encode() + b"\r\n",
    }


@pytest.mark.parametrize("name", sorted(corpus()))
def test_corpus(settings: Settings, tmp_path: Path, name: str) -> None:
    path = tmp_path / "events.jsonl"
    valid = valid_event("beside")
    path.write_bytes(corpus()[name] + b"\n" + json.dumps(valid).encode() + b"\n")
    report = attempt(settings, path, "corpus", [valid["event_id"]])
    assert report is not None


def test_a_file_that_is_not_parquet_is_one_named_error(settings: Settings, tmp_path: Path) -> None:
    for name, data in {"empty": b"", "text": b"not parquet", "magic only": b"PAR1PAR1"}.items():
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(data)
        assert attempt(settings, path, "parquet corpus", []) is None
