"""The privacy audit's scanner: the identifying values a run sent, and every place the run
left bytes in (Kafka topics and the broker's log segments, Parquet, DuckDB, plain files),
read raw and decoded, searched for every spelling of those values.

Matching is on bytes, case-insensitively (both sides lower-cased), so a value found in any
encoding we can name (raw, percent-encoded, JSON-escaped ASCII, in a column's text) counts.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import pyarrow.parquet as pq
from kafka import KafkaConsumer, TopicPartition
from kafka.record import MemoryRecords


@dataclass(frozen=True)
class Needle:
    kind: str  # "ip", "user_agent", "client_id", "session_id", "email", "phone", ...
    value: str  # the value as sent (for the report)
    spelling: bytes  # what is searched for, lower-case


@dataclass
class Identifiers:
    """What the run sent, by kind; `spellings` gives every form the scan looks for."""

    by_kind: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, *values: str) -> None:
        known = self.by_kind.setdefault(kind, [])
        known.extend(value for value in values if value not in known)

    def counts(self) -> str:
        return ", ".join(f"{len(values)} {kind}" for kind, values in self.by_kind.items())

    def needles(self) -> list[Needle]:
        found: dict[bytes, Needle] = {}
        for kind, values in self.by_kind.items():
            for value in values:
                for spelling in _spellings(kind, value):
                    lowered = spelling.lower()
                    found.setdefault(lowered, Needle(kind, value, lowered))
        return list(found.values())


def _spellings(kind: str, value: str) -> list[bytes]:
    text = [value, quote(value, safe=""), quote_plus(value), quote(quote(value, safe=""), safe="")]
    text.append(json.dumps(value, ensure_ascii=True)[1:-1])  # JSON's escapes ("\/" aside)
    spellings = [item.encode() for item in text]
    if kind == "ip":
        address = ipaddress.ip_address(value)
        spellings.append(str(address).encode())
        if address.version == 6:
            spellings.append(address.exploded.encode())
            # Packed: 16 bytes cannot match by chance. Four packed IPv4 bytes can (about
            # once per 4 GB of random data), so those are not searched for.
            spellings.append(address.packed)
    return spellings


@dataclass(frozen=True)
class Hit:
    where: str
    kind: str
    value: str


class Scan:
    """Searches blobs for every needle and counts what it looked at.

    `anchors` are run tokens that many needles contain (in every spelling): a blob
    without an anchor cannot hold any of its needles, so those are searched for only
    where it occurs. Same hits, a fraction of the searching."""

    def __init__(
        self, needles: list[Needle], anchors: Iterable[str] = (), controls: Iterable[str] = ()
    ) -> None:
        self.needles = needles
        self.hits: list[Hit] = []
        # Positive controls: text that must be found in the places scanned (a scan that
        # cannot see the run's own output proves nothing). Control -> labels it was in.
        self.controls: dict[bytes, set[str]] = {c.lower().encode(): set() for c in controls}
        self.messages: Counter[str] = Counter()  # per topic
        self.seen: Counter[str] = Counter()  # "files", "kafka messages", "parquet rows", ...
        self.scanned_bytes = 0
        self._anchored: dict[bytes, list[Needle]] = {}
        self._always: list[Needle] = []
        keys = [anchor.lower().encode() for anchor in anchors]
        for needle in needles:
            anchor = next((key for key in keys if key in needle.spelling), None)
            if anchor is None:
                self._always.append(needle)
            else:
                self._anchored.setdefault(anchor, []).append(needle)

    def blob(self, where: str, data: bytes) -> None:
        self.scanned_bytes += len(data)
        lowered = data.lower()
        candidates = list(self._always)
        for anchor, needles in self._anchored.items():
            if anchor in lowered:
                candidates += needles
        for needle in candidates:
            if needle.spelling in lowered:
                self.hits.append(Hit(where, needle.kind, needle.value))
        for control, labels in self.controls.items():
            if control in lowered:
                labels.add(where.split(":", 1)[0])

    def text(self, where: str, text: str) -> None:
        self.blob(where, text.encode("utf-8", "surrogatepass"))

    # -- files -------------------------------------------------------------------------------

    def tree(self, root: Path, label: str) -> None:
        """Every file under `root`: its raw bytes, and decoded where it has a format."""
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            where = f"{label}:{path.relative_to(root)}"
            self.seen[f"{label} files"] += 1
            self.blob(where, path.read_bytes())
            if path.suffix == ".parquet":
                self.parquet(where, path)
            elif path.suffix == ".duckdb":
                self.duckdb_file(where, path)

    def parquet(self, where: str, path: Path) -> None:
        # Decompressed: zstd pages hide their text from a raw search.
        table = pq.read_table(path)
        self.seen["parquet rows"] += table.num_rows
        self.text(f"{where} (rows)", json.dumps(table.to_pylist(), default=str))
        metadata = table.schema.metadata or {}
        self.blob(f"{where} (metadata)", b"\n".join(k + b"=" + v for k, v in metadata.items()))

    def duckdb_file(self, where: str, path: Path) -> None:
        with duckdb.connect(str(path), read_only=True) as con:
            tables = con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
            ).fetchall()
            self.seen["warehouse tables"] += len(tables)
            for schema, name in tables:
                # Names from DuckDB's own catalog, quoted: no outside text in the SQL.
                rows = con.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall()
                self.seen["warehouse rows"] += len(rows)
                self.text(f"{where} {schema}.{name}", json.dumps(rows, default=str))

    # -- Kafka --------------------------------------------------------------------------------

    def topics(self, bootstrap: str, topics: Iterable[str], timeout_s: float = 60.0) -> None:
        """Every message of `topics`, from the beginning to the end offsets read now,
        decompressed by the client: keys, values and headers."""
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, exclude_internal_topics=False
        )
        try:
            for topic in sorted(topics):
                self.seen["topics"] += 1
                partitions = consumer.partitions_for_topic(topic) or set()
                assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
                consumer.assign(assigned)
                consumer.seek_to_beginning(*assigned)
                ends = consumer.end_offsets(assigned)
                deadline = time.monotonic() + timeout_s
                while any(consumer.position(tp) < ends[tp] for tp in assigned):
                    assert time.monotonic() < deadline, f"{topic}: not read to its end in time"
                    for tp, records in consumer.poll(timeout_ms=500).items():
                        for record in records:
                            self.seen["kafka messages"] += 1
                            self.messages[tp.topic] += 1
                            headers = b"".join(
                                k.encode() + b"=" + (v or b"") for k, v in record.headers
                            )
                            where = f"kafka:{tp.topic}/{tp.partition}@{record.offset}"
                            self.blob(
                                where, (record.key or b"") + b"\t" + (record.value or b"") + headers
                            )
        finally:
            consumer.close()

    def broker_partition_dir(self, directory: Path) -> None:
        """A partition's files on the broker's disk: raw bytes (lz4 batches hide their
        text), then each log segment's batches decompressed record by record."""
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            where = f"broker:{directory.name}/{path.name}"
            self.seen["broker files"] += 1
            # Index files are preallocated (10 MB of zeros): the zero tail holds nothing.
            self.blob(where, path.read_bytes().rstrip(b"\0"))
            if path.suffix == ".log":
                records = MemoryRecords(path.read_bytes())
                while records.has_next():
                    batch = records.next_batch()
                    if batch is None:  # a partial batch at the end of the active segment
                        break
                    for record in batch:
                        self.seen["broker records"] += 1
                        self.blob(
                            f"{where} (decompressed)", (record.key or b"") + (record.value or b"")
                        )

    def summary(self) -> str:
        parts = ", ".join(f"{count} {what}" for what, count in self.seen.items())
        return f"{parts}, {self.scanned_bytes / 1e6:.1f} MB searched"
