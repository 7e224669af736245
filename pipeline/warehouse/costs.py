"""`sessionflow costs load FILE`: marketing costs (CSV or Parquet) into `marketing_costs`.

In the spirit of GA4 cost data import. Columns:

    date          required, YYYY-MM-DD
    site_id       required when more than one site is configured, else defaults to it
    source        required; stored trimmed and in lower case, as sessions are matched
    medium        required; likewise
    campaign      optional; likewise, and a missing one is "(not set)", as for sessions
    ad_group, term, content             optional (an empty value is NULL)
    cost          required, a finite decimal >= 0 with at most 4 decimal places
    currency      required, ISO 4217
    clicks, impressions                 optional non-negative whole numbers

The file is validated whole before the warehouse is touched: every bad row is reported
with its place (CSV: physical line, the header being line 1; Parquet: "row N", from 1)
and nothing is loaded if any row is bad. A good file replaces, in one DuckDB transaction,
every row already loaded for the (date, site_id, source, medium, campaign) keys it
contains, as GA4's cost import does: other campaigns of those dates stay. Loading the same
file twice gives the same rows, and a failure leaves the old rows.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final, TextIO, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.duckdb_connections import connect
from pipeline.errors import SessionflowError
from pipeline.events.codes import currency_codes
from pipeline.sessions.attribution import attribution_key, campaign_key
from pipeline.warehouse.cost_schema import (
    COLUMNS,
    GROUP_KEY,
    REQUIRED_COLUMNS,
    ROW_KEY,
    CostRow,
    cost_table,
)
from pipeline.warehouse.models import query_sql_model, run_sql_model

# DECIMAL(18,4): 14 digits before the point, 4 after.
_COST_SCALE: Final = Decimal("0.0001")
_COST_LIMIT: Final = Decimal(10) ** 14
_BIGINT_MAX: Final = 2**63 - 1
# re.ASCII throughout: \d would also match Arabic-Indic or fullwidth digits, which Decimal
# and int() read as numbers; a look-alike digit is a wrong export, not a number.
_DATE_TEXT: Final = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# Plain decimal notation only: "1,234.50", "1e3" or "12 USD" are more likely a wrong
# export setting than a number we should guess at.
_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)", re.ASCII)
_NON_FINITE_TEXT: Final = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_WHOLE_TEXT: Final = re.compile(r"[+-]?\d+", re.ASCII)
_STAGED: Final = "_sessionflow_staged_costs"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class CostRowError:
    """Why one row of the file cannot be loaded: `where` is "line 7" or "row 7"."""

    where: str
    column: str | None
    reason: str

    def line(self) -> str:
        if self.column is None:
            return f"{self.where}: {self.reason}"
        return f"{self.where}: {self.column}: {self.reason}"

    def __str__(self) -> str:
        return self.line()


class CostLoadError(SessionflowError):
    """Some rows are bad, so nothing was loaded. The message is the one-line summary;
    `errors` lists every bad row (one entry per problem) for the CLI to print."""

    def __init__(self, message: str, errors: Sequence[CostRowError]) -> None:
        super().__init__(message)
        self.errors: tuple[CostRowError, ...] = tuple(errors)


@dataclass(frozen=True, slots=True)
class CostLoad:
    """What a load did."""

    path: Path
    rows_loaded: int
    first_date: date | None  # None when the file has no rows
    last_date: date | None
    groups: int  # distinct (date, site_id, source, medium, campaign) keys in the file
    groups_replaced: int  # of those, how many already had rows (now replaced)
    rows_deleted: int  # old rows those groups held
    # Currencies in the file that are neither the reporting currency nor in
    # currency_rates: their costs will be flagged and kept out of the sums.
    unconverted_currencies: tuple[str, ...] = ()
    dates: tuple[date, ...] = ()  # every date the load touched: those days are now stale

    def line(self) -> str:
        if self.rows_loaded == 0:
            return f"{self.path}: no rows; nothing loaded"
        return (
            f"loaded {self.rows_loaded} cost rows for {self.first_date}..{self.last_date} "
            f"from {self.path} ({self.groups} date/site/source/medium/campaign keys, "
            f"{self.groups_replaced} replaced, {self.rows_deleted} old rows deleted)"
        )


# -- public entry points -------------------------------------------------------------------


def load_costs(settings: Settings, path: Path) -> CostLoad:
    """Validate the whole file, then replace its groups in the warehouse atomically.

    Raises SessionflowError (one line) for an unreadable file or a bad header, and
    CostLoadError for bad rows; in both cases the warehouse is left untouched.
    """
    rows = read_costs(settings, path)
    unconverted = sorted(
        {row.currency for row in rows} - {settings.currency} - settings.currency_rates.keys()
    )
    if not rows:
        return CostLoad(path, 0, None, None, 0, 0, 0, tuple(unconverted))
    groups_replaced, rows_deleted = _replace_groups(settings, rows, path)
    dates = [row.date for row in rows]
    return CostLoad(
        path=path,
        rows_loaded=len(rows),
        first_date=min(dates),
        last_date=max(dates),
        groups=len({_group(row) for row in rows}),
        groups_replaced=groups_replaced,
        rows_deleted=rows_deleted,
        unconverted_currencies=tuple(unconverted),
        dates=tuple(sorted(set(dates))),
    )


def read_costs(settings: Settings, path: Path) -> list[CostRow]:
    """Every row of the file, validated; raises instead of returning a partial list."""
    suffix = path.suffix.lower()
    # A directory, FIFO or device (/dev/zero behind a .csv name) would block or never end.
    if path.exists() and not path.is_file():
        raise SessionflowError(f"cannot load costs from {path}: not a regular file")
    if suffix == ".csv":
        records = _csv_records(path)
    elif suffix == ".parquet":
        records = _parquet_records(path)
    else:
        raise SessionflowError(f"cannot load costs from {path}: expected a .csv or .parquet file")
    with closing(records):  # closes the file even when the header is rejected
        return _validate(records, settings, path)


def _validate(
    records: Generator[_Record, None, None], settings: Settings, path: Path
) -> list[CostRow]:
    header = next(records, None)
    if header is None:
        raise SessionflowError(f"{path} is empty: expected a header row naming the columns")
    # Blanks around a name are an editing accident, not a different column.
    columns = [str(name).strip() for name in header[1]]
    _check_header(columns, settings, path)

    parser = _RowParser(settings)
    rows: list[CostRow] = []
    errors: list[CostRowError] = []
    first_seen: dict[tuple[object, ...], str] = {}
    for where, values in records:
        if len(values) != len(columns):
            errors.append(
                CostRowError(where, None, f"expected {len(columns)} fields, got {len(values)}")
            )
            continue
        row, problems = parser.parse(where, dict(zip(columns, values, strict=True)))
        if row is None:
            errors.extend(problems)
            continue
        key = tuple(getattr(row, name) for name in ROW_KEY)
        if key in first_seen:
            errors.append(
                CostRowError(
                    where, None, f"duplicate of {first_seen[key]} (same {', '.join(ROW_KEY)})"
                )
            )
            continue
        first_seen[key] = where
        rows.append(row)
    if errors:
        bad_rows = len({error.where for error in errors})
        noun = "bad row" if bad_rows == 1 else "bad rows"
        raise CostLoadError(f"{bad_rows} {noun} in {path}; nothing loaded", errors)
    return rows


# -- reading ---------------------------------------------------------------------------------

# A file as (where, values) records: the header first (its values are the column names),
# then one record per data row, values as read (text for CSV, Python objects for Parquet).
_Record = tuple[str, Sequence[object]]


def _csv_records(path: Path) -> Generator[_Record, None, None]:
    try:
        # utf-8-sig: spreadsheet exports often start with a byte order mark.
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(_bounded_lines(handle, path))
            start = 1
            try:
                for fields in reader:
                    # A quoted field may span lines; report the line the record starts on.
                    line, start = start, reader.line_num + 1
                    if fields:  # blank lines carry nothing
                        yield f"line {line}", fields
            except csv.Error as exc:
                raise SessionflowError(f"{path} line {reader.line_num}: bad CSV: {exc}") from None
            except UnicodeDecodeError:
                raise SessionflowError(
                    f"{path} is not UTF-8 text (near line {reader.line_num + 1})"
                ) from None
    except FileNotFoundError:
        raise SessionflowError(f"costs file not found: {path}") from None
    except OSError as exc:
        raise SessionflowError(f"cannot read {path}: {exc.strerror or exc}") from None


# No cost row comes near this; a longer line (a binary file, one endless line) is refused
# before it is held in memory whole.
_MAX_LINE_CHARS: Final = 1 << 20


def _bounded_lines(handle: TextIO, path: Path) -> Iterator[str]:
    number = 0
    while line := handle.readline(_MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > _MAX_LINE_CHARS:
            raise SessionflowError(
                f"{path} line {number}: longer than {_MAX_LINE_CHARS} characters; not a cost file"
            )
        yield line


def _parquet_records(path: Path) -> Generator[_Record, None, None]:
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        yield "header", names
        row = 0
        for batch in parquet.iter_batches(batch_size=64 * 1024):
            for values in batch.to_pylist():
                row += 1
                yield f"row {row}", [values[name] for name in names]
    except FileNotFoundError:
        raise SessionflowError(f"costs file not found: {path}") from None
    except (pa.ArrowException, OSError) as exc:
        raise SessionflowError(
            f"{path} is not a readable Parquet file: {_first_line(exc)}"
        ) from None


def _check_header(names: Sequence[str], settings: Settings, path: Path) -> None:
    problems = []
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        problems.append(f"duplicate columns: {_names(duplicated)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if len(settings.sites) > 1 and "site_id" not in names:
        missing.insert(1, "site_id")
    if missing:
        text = f"missing required columns: {_names(missing)}"
        if "site_id" in missing:
            text += " (site_id is required when more than one site is configured)"
        problems.append(text)
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        problems.append(f"unknown columns: {_names(unknown)} (expected: {', '.join(COLUMNS)})")
    if problems:
        raise SessionflowError(f"{path}: " + "; ".join(problems) + "; nothing loaded")


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


# -- row validation ---------------------------------------------------------------------------


class _Bad(Exception):
    """One column's value is unusable; the message is the reason."""


_MAX_REASON: Final = 300


class _Fields:
    """Parses a row's columns one by one, collecting every problem instead of stopping."""

    def __init__(self, where: str, values: Mapping[str, object]) -> None:
        self.where = where
        self.values = values
        self.errors: list[CostRowError] = []

    def take(self, column: str, parse: Callable[[object], _T], placeholder: _T) -> _T:
        try:
            return parse(self.values.get(column))
        except _Bad as exc:
            reason = str(exc)
            if len(reason) > _MAX_REASON:  # it quotes the value: not all 10 MB of it
                reason = reason[:_MAX_REASON] + "..."
            self.errors.append(CostRowError(self.where, column, reason))
            return placeholder  # never loaded: a row with errors is dropped whole


class _RowParser:
    def __init__(self, settings: Settings) -> None:
        self._sites = tuple(settings.sites)
        self._currencies = currency_codes()

    def parse(
        self, where: str, values: Mapping[str, object]
    ) -> tuple[CostRow | None, list[CostRowError]]:
        """The row, or None and every problem found in it (not just the first)."""
        fields = _Fields(where, values)
        row = CostRow(
            date=fields.take("date", _parse_date, date.min),
            site_id=fields.take("site_id", self._parse_site, ""),
            source=fields.take("source", _parse_attribution_key, ""),
            medium=fields.take("medium", _parse_attribution_key, ""),
            campaign=campaign_key(fields.take("campaign", _parse_text, None)),
            ad_group=fields.take("ad_group", _parse_text, None),
            term=fields.take("term", _parse_text, None),
            content=fields.take("content", _parse_text, None),
            cost=fields.take("cost", _parse_cost, Decimal(0)),
            currency=fields.take("currency", self._parse_currency, ""),
            clicks=fields.take("clicks", _parse_count, None),
            impressions=fields.take("impressions", _parse_count, None),
        )
        return (None, fields.errors) if fields.errors else (row, [])

    def _parse_site(self, value: object) -> str:
        site = _parse_text(value)
        if site is None:
            if len(self._sites) == 1:
                return self._sites[0]
            raise _Bad("is empty; required when more than one site is configured")
        if site not in self._sites:
            raise _Bad(f"{site!r} is not a configured site ({', '.join(self._sites)})")
        return site

    def _parse_currency(self, value: object) -> str:
        code = _required(_parse_text(value))
        if code not in self._currencies:
            hint = f" (did you mean {code.upper()!r}?)" if code.upper() in self._currencies else ""
            raise _Bad(f"{code!r} is not an ISO 4217 code{hint}")
        return code


def _parse_attribution_key(value: object) -> str:
    return attribution_key(_parse_required_text(value))


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _required(value: str | None) -> str:
    if value is None:
        raise _Bad("is empty but required")
    return value


def _parse_required_text(value: object) -> str:
    return _required(_parse_text(value))


def _parse_text(value: object) -> str | None:
    """Text with surrounding blanks removed (sessions strip utm values too); "" is NULL."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Bad(f"expected text, got {_show(value)}")
    return value.strip() or None


def _parse_date(value: object) -> date:
    if isinstance(value, datetime):  # a date subclass: a time of day has no place here
        raise _Bad(f"{value} is a timestamp, expected a date (YYYY-MM-DD)")
    if isinstance(value, date):
        return value
    text = _required(_parse_text(value))
    if not _DATE_TEXT.fullmatch(text):
        raise _Bad(f"{text!r} is not a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Bad(f"{text!r} is not a valid date") from None


def _parse_cost(value: object) -> Decimal:
    # Decimal throughout: "0.1" must be stored as 0.1000, not as the nearest binary float.
    if isinstance(value, bool):
        raise _Bad(f"{value} is not a number")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))  # the float's shortest spelling: 12.5, not 12.4999...
    else:
        text = _required(_parse_text(value))
        if _NON_FINITE_TEXT.fullmatch(text):
            raise _Bad(f"{text!r} is not a finite number")
        if not _DECIMAL_TEXT.fullmatch(text):
            raise _Bad(f"{text!r} is not a number")
        amount = Decimal(text)
    if not amount.is_finite():
        raise _Bad(f"{_show(value)} is not a finite number")
    if amount < 0:
        raise _Bad(f"{_show(value)} is negative")
    if amount >= _COST_LIMIT:
        raise _Bad(f"{_show(value)} is too large (at most 14 digits before the point)")
    quantized = amount.quantize(_COST_SCALE)
    if quantized != amount:  # rounding would change what the advertiser was billed
        raise _Bad(f"{_show(value)} has more than 4 decimal places")
    return abs(quantized)  # abs: "-0" is 0


def _parse_count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Bad(f"{value} is not a whole number")
    if isinstance(value, float):
        if value != value:  # NaN: pandas' spelling of a missing value in a number column
            return None
        if not value.is_integer():
            raise _Bad(f"{value} is not a whole number")
        count = int(value)
    elif isinstance(value, int):
        count = value
    else:
        text = _parse_text(value)
        if text is None:
            return None
        if not _WHOLE_TEXT.fullmatch(text):
            raise _Bad(f"{text!r} is not a whole number")
        if len(text.lstrip("+-").lstrip("0")) > 100:
            # int() refuses more than 4300 digits with a ValueError; it is too large anyway.
            raise _Bad(f"{text[:30]!r}... ({len(text)} digits) is too large")
        count = int(text)
    if count < 0:
        raise _Bad(f"{_show(value)} is negative")
    if count > _BIGINT_MAX:
        raise _Bad(f"{_show(value)} is too large")
    return count


def _group(row: CostRow) -> tuple[object, ...]:
    return tuple(getattr(row, name) for name in GROUP_KEY)


# -- the warehouse --------------------------------------------------------------------------


def _replace_groups(settings: Settings, rows: Sequence[CostRow], path: Path) -> tuple[int, int]:
    """Delete the file's groups and insert its rows in one transaction.

    Returns (groups that had rows, rows deleted). Any failure rolls the whole load back.
    """
    staged = cost_table(list(rows))
    loaded_at = datetime.now(UTC)  # one stamp: the rows of one load belong together
    warehouse = settings.warehouse_path
    try:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        con = connect(settings, warehouse)
    except (OSError, duckdb.Error) as exc:
        raise SessionflowError(
            f"cannot open the warehouse {warehouse}: {_first_line(exc)}"
        ) from None
    try:
        con.register("staged_costs", staged)
        con.execute("BEGIN TRANSACTION")
        try:
            run_sql_model(con, "publish/marketing_costs")
            counts = query_sql_model(con, "publish/replaced_cost_groups").to_pylist()[0]
            run_sql_model(con, "publish/replace_costs", {"loaded_at": loaded_at})
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
    except duckdb.Error as exc:
        raise SessionflowError(
            f"could not load {path} into {warehouse}: {_first_line(exc)}; nothing loaded"
        ) from None
    finally:
        con.close()
    return int(counts["groups_replaced"]), int(counts["rows_deleted"])


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    # The failure may have aborted the transaction already; its error is the one to report.
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
