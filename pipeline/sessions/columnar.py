"""Columnar pieces of the sessionizer: the open-session store and vectorised helpers.

Why columnar: a dict of dataclasses costs ~400 bytes per open visitor; a million open
visitors held as numpy columns cost ~100 bytes each, and a release updates them with
array operations instead of a Python loop per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.timestamps import EPOCH

Ints = npt.NDArray[np.int64]
Campaign = tuple[str | None, ...] | None
NO_CAMPAIGN = -1  # the code of "no campaign fields at all"
_CAMPAIGN_SLACK = 4096  # unused campaign codes tolerated before renumbering
_HOUR = 3_600_000_000
_DAY = 24 * _HOUR
_EPOCH_ORDINAL = EPOCH.toordinal()
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_SLICE = 8192  # rows per gather step in encode_keys
_BLOCK = 64  # SHA-256's block size, for HMAC


@dataclass
class OpenSession:
    """What is held per (site, visitor) for inactivity-based sessions."""

    session_id: str
    first_ts: int
    last_ts: int
    campaign: Campaign
    local_day: int


class OpenSessionStore(Mapping[tuple[str, str], OpenSession]):
    """(site, visitor) -> OpenSession, held as numpy columns sorted by an encoded key and
    found by binary search. The Mapping view materialises OpenSession objects on demand
    (snapshots, tests); the sessionizer works on the columns."""

    def __init__(self) -> None:
        self._sites: list[str] = []
        self._site_codes: dict[str, int] = {}
        self._campaigns: list[tuple[str | None, ...]] = []
        self._campaign_codes: dict[tuple[str | None, ...], int] = {}
        # key: 4-byte site code + visitor UTF-8 + b"\x01" (the terminator keeps numpy's
        # zero padding from making two keys equal).
        self.held_keys: npt.NDArray[np.bytes_] = np.empty(0, "S5")
        self.session_ids: npt.NDArray[np.bytes_] = np.empty(0, "S32")
        self.first: Ints = np.empty(0, np.int64)
        self.last: Ints = np.empty(0, np.int64)
        self.campaign: npt.NDArray[np.int32] = np.empty(0, np.int32)
        self.day: npt.NDArray[np.int32] = np.empty(0, np.int32)

    # -- codes --------------------------------------------------------------------------

    def site_code(self, site: str) -> int:
        code = self._site_codes.get(site)
        if code is None:
            code = self._site_codes[site] = len(self._sites)
            self._sites.append(site)
        return code

    def campaign_code(self, campaign: Campaign) -> int:
        if campaign is None:
            return NO_CAMPAIGN
        code = self._campaign_codes.get(campaign)
        if code is None:
            code = self._campaign_codes[campaign] = len(self._campaigns)
            self._campaigns.append(campaign)
        return code

    def campaign_of(self, code: int) -> Campaign:
        return None if code == NO_CAMPAIGN else self._campaigns[code]

    def forget_unused_campaigns(self) -> None:
        """Keep codes only for the campaigns open sessions hold. The utm values come from
        landing-page URLs anyone can vary, so a table of every campaign ever seen would
        grow without bound; it is renumbered once it is well past what is held."""
        if len(self._campaigns) <= 2 * len(self.campaign) + _CAMPAIGN_SLACK:
            return
        held = self.campaign != NO_CAMPAIGN
        used = np.unique(self.campaign[held])
        renumbered = np.full(len(self._campaigns), NO_CAMPAIGN, np.int32)
        renumbered[used] = np.arange(len(used), dtype=np.int32)
        self.campaign = np.where(held, renumbered[np.where(held, self.campaign, 0)], NO_CAMPAIGN)
        self.campaign = self.campaign.astype(np.int32)
        self._campaigns = [self._campaigns[code] for code in used.tolist()]
        self._campaign_codes = {campaign: code for code, campaign in enumerate(self._campaigns)}

    def encode_keys(self, site_codes: Ints, visitors: pa.Array) -> npt.NDArray[np.bytes_]:
        """Keys for parallel site codes and visitor ids (an Arrow string array)."""
        data, offsets = _string_buffers(visitors)
        lengths = np.diff(offsets)
        longest = int(lengths.max()) if len(lengths) else 0
        width = 4 + longest + 1
        out = np.zeros((len(lengths), width), np.uint8)
        out[:, :4] = site_codes.astype(">u4").view(np.uint8).reshape(-1, 4)
        if len(lengths) and (lengths == longest).all():  # e.g. hashed ids: one reshape
            body = data[offsets[0] : offsets[0] + len(lengths) * longest]
            out[:, 4 : 4 + longest] = body.reshape(len(lengths), longest)
        else:  # a gather, in slices to bound the index arrays it needs
            columns = np.arange(longest)
            for start in range(0, len(lengths), _SLICE):
                rows = slice(start, start + _SLICE)
                inside = columns < lengths[rows, None]
                picked = (offsets[:-1][rows][:, None] + columns)[inside]
                out[rows, 4 : 4 + longest][inside] = data[picked]
        out[np.arange(len(lengths)), 4 + lengths] = 1
        return out.view(f"S{width}").ravel()

    def key_of(self, site: str, visitor: str) -> bytes:
        return self.site_code(site).to_bytes(4, "big") + visitor.encode() + b"\x01"

    # -- lookups and writes ---------------------------------------------------------------

    def find(self, keys: npt.NDArray[np.bytes_]) -> tuple[Ints, npt.NDArray[np.bool_]]:
        """(slot, found) for each key; a slot is meaningless where not found."""
        keys = self._fit_keys(keys)
        slots = np.searchsorted(self.held_keys, keys).astype(np.int64)
        inside = slots < len(self.held_keys)
        found = np.zeros(len(keys), bool)
        found[inside] = self.held_keys[slots[inside]] == keys[inside]
        return np.where(found, slots, 0), found

    def update(self, slots: Ints, values: _Columns) -> None:
        self.session_ids = _widen(self.session_ids, values.session_ids)
        self.session_ids[slots] = values.session_ids
        self.first[slots] = values.first
        self.last[slots] = values.last
        self.campaign[slots] = values.campaign
        self.day[slots] = values.day

    def insert(self, keys: npt.NDArray[np.bytes_], values: _Columns) -> None:
        """Add keys that are not held yet (distinct), keeping the columns sorted."""
        if not len(keys):
            return
        keys = self._fit_keys(keys)
        order = np.argsort(keys, kind="stable")
        at = np.searchsorted(self.held_keys, keys[order])
        self.held_keys = np.insert(self.held_keys, at, keys[order])
        self.session_ids = np.insert(
            _widen(self.session_ids, values.session_ids), at, values.session_ids[order]
        )
        self.first = np.insert(self.first, at, values.first[order])
        self.last = np.insert(self.last, at, values.last[order])
        self.campaign = np.insert(self.campaign, at, values.campaign[order])
        self.day = np.insert(self.day, at, values.day[order])

    @property
    def nbytes(self) -> int:
        """The bytes the columns hold (the Python objects around them are fixed)."""
        columns = (self.held_keys, self.session_ids, self.first, self.last, self.campaign, self.day)
        return sum(column.nbytes for column in columns)

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self.held_keys = self.held_keys[mask]
        self.session_ids = self.session_ids[mask]
        self.first, self.last = self.first[mask], self.last[mask]
        self.campaign, self.day = self.campaign[mask], self.day[mask]

    def columns_of(self, sessions: list[OpenSession]) -> _Columns:
        return _Columns(
            np.array([held.session_id.encode() for held in sessions] or [b""])[: len(sessions)],
            np.array([held.first_ts for held in sessions], np.int64),
            np.array([held.last_ts for held in sessions], np.int64),
            np.array([self.campaign_code(held.campaign) for held in sessions], np.int32),
            np.array([held.local_day for held in sessions], np.int32),
        )

    def put_many(self, entries: list[tuple[str, str, OpenSession]]) -> None:
        """Entries from Python objects (restores); later ones win."""
        if not entries:
            return
        latest = {(site, visitor): held for site, visitor, held in entries}
        keys = np.array([self.key_of(site, visitor) for site, visitor in latest])
        values = self.columns_of(list(latest.values()))
        slots, found = self.find(keys)
        self.update(slots[found], values.select(found))
        self.insert(keys[~found], values.select(~found))

    def _fit_keys(self, keys: npt.NDArray[np.bytes_]) -> npt.NDArray[np.bytes_]:
        if keys.dtype.itemsize > self.held_keys.dtype.itemsize:
            self.held_keys = self.held_keys.astype(keys.dtype)
        return keys.astype(self.held_keys.dtype, copy=False)

    # -- the Mapping view -----------------------------------------------------------------

    def _decode(self, key: bytes) -> tuple[str, str]:
        return self._sites[int.from_bytes(key[:4], "big")], key[4:-1].decode()

    def __len__(self) -> int:
        return len(self.held_keys)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return (self._decode(bytes(key)) for key in self.held_keys.tolist())

    def __getitem__(self, key: tuple[str, str]) -> OpenSession:
        if key[0] not in self._site_codes:
            raise KeyError(key)
        slots, found = self.find(np.array([self.key_of(*key)]))
        if not found[0]:
            raise KeyError(key)
        slot = int(slots[0])
        return OpenSession(
            self.session_ids[slot].decode(),
            int(self.first[slot]),
            int(self.last[slot]),
            self.campaign_of(int(self.campaign[slot])),
            int(self.day[slot]),
        )

    def rows(self) -> Iterator[tuple[str, str, OpenSession]]:
        """Every entry in key order, fast enough for a snapshot of a million."""
        columns = zip(
            self.held_keys.tolist(), self.session_ids.tolist(), self.first.tolist(),
            self.last.tolist(), self.campaign.tolist(), self.day.tolist(), strict=True,
        )  # fmt: skip
        for key, session_id, first, last, campaign, day in columns:
            site, visitor = self._decode(key)
            yield (
                site,
                visitor,
                OpenSession(session_id.decode(), first, last, self.campaign_of(campaign), day),
            )


@dataclass
class _Columns:
    """Values for store rows, parallel to some keys."""

    session_ids: npt.NDArray[np.bytes_]
    first: Ints
    last: Ints
    campaign: npt.NDArray[np.int32]
    day: npt.NDArray[np.int32]

    def select(self, mask: npt.NDArray[np.bool_]) -> _Columns:
        return _Columns(
            self.session_ids[mask], self.first[mask], self.last[mask],
            self.campaign[mask], self.day[mask],
        )  # fmt: skip


def _widen(
    held: npt.NDArray[np.bytes_], incoming: npt.NDArray[np.bytes_]
) -> npt.NDArray[np.bytes_]:
    return held.astype(incoming.dtype) if incoming.dtype.itemsize > held.dtype.itemsize else held


# -- Arrow <-> numpy ----------------------------------------------------------------------


def _string_buffers(strings: pa.Array) -> tuple[npt.NDArray[np.uint8], Ints]:
    """The UTF-8 bytes and the offsets (from 0) of an Arrow string array without nulls."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    strings = strings.cast(pa.large_string())
    _, offsets_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64)[
        strings.offset : strings.offset + len(strings) + 1
    ]
    data = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    )
    return data, offsets


def bytes_to_arrow(values: npt.NDArray[np.bytes_]) -> pa.Array:
    """A numpy fixed-width bytes array (no trailing NULs inside values) as Arrow strings."""
    width = values.dtype.itemsize
    lengths = np.strings.str_len(values).astype(np.int64)
    if len(values) and (lengths == width).all():  # the usual case: every id is full width
        data = np.ascontiguousarray(values).view(np.uint8)
    else:
        grid = np.ascontiguousarray(values).view(np.uint8).reshape(-1, width)
        data = grid[np.arange(width) < lengths[:, None]]
    offsets = np.zeros(len(values) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    ).cast(pa.string())


def hex_ids(digests: bytes, count: int, hex_chars: int) -> npt.NDArray[np.bytes_]:
    """The first `hex_chars` lowercase hex digits of each of `count` 32-byte digests."""
    grid = np.frombuffer(digests, np.uint8).reshape(count, 32)[:, : hex_chars // 2]
    out = np.empty((count, hex_chars), np.uint8)
    out[:, 0::2] = _HEX[grid >> 4]
    out[:, 1::2] = _HEX[grid & 15]
    return out.view(f"S{hex_chars}").ravel()


def keyed_hashes(key: bytes, columns: list[pa.Array], hex_chars: int) -> npt.NDArray[np.bytes_]:
    """pipeline.privacy.hashing.keyed_hash over rows of string columns: HMAC-SHA256 of the
    length-prefixed parts, messages built by Arrow. The HMAC's keyed inner and outer
    states are computed once and copied per row, twice as fast as hmac.digest()."""
    parts: list[pa.Array | str] = []
    for column in columns:
        parts += [pc.cast(pc.utf8_length(column), pa.string()), ":", column]
    messages = pc.binary_join_element_wise(*parts, "").cast(pa.binary()).to_pylist()
    digest = _hmac_sha256(key)
    return hex_ids(b"".join(map(digest, messages)), len(messages), hex_chars)


def _hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 (RFC 2104) with `key`, as hmac.digest(key, message, "sha256")."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key)).copy
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key)).copy

    def digest(message: bytes) -> bytes:
        hashed = inner()
        hashed.update(message)
        wrapped = outer()
        wrapped.update(hashed.digest())
        return wrapped.digest()

    return digest


def local_days(stamps: Ints, zone: ZoneInfo) -> npt.NDArray[np.int32]:
    """The proleptic ordinal of each instant's local date in `zone`, as
    (EPOCH + timedelta(us)).astimezone(zone).toordinal() gives it. The UTC offset is
    looked up once per hour bucket; a bucket holding an offset change is done per event."""
    hours = stamps // _HOUR
    buckets, inverse = np.unique(hours, return_inverse=True)
    offsets = np.empty(len(buckets), np.int64)
    steady = np.ones(len(buckets), bool)
    for index, hour in enumerate(buckets.tolist()):
        start = _offset_micros(hour * _HOUR, zone)
        offsets[index] = start
        steady[index] = start == _offset_micros((hour + 1) * _HOUR - 1, zone)
    days = (stamps + offsets[inverse]) // _DAY + _EPOCH_ORDINAL
    for row in np.flatnonzero(~steady[inverse]).tolist():
        days[row] = (EPOCH + timedelta(microseconds=int(stamps[row]))).astimezone(zone).toordinal()
    return days.astype(np.int32)


def _offset_micros(micros: int, zone: ZoneInfo) -> int:
    offset = (EPOCH + timedelta(microseconds=micros)).astimezone(zone).utcoffset()
    return 0 if offset is None else offset // timedelta(microseconds=1)


def campaign_codes(
    store: OpenSessionStore, table: pa.Table, names: tuple[str, ...]
) -> npt.NDArray[np.int32]:
    """Each row's campaign (the utm fields as a tuple; none at all = NO_CAMPAIGN) as the
    store's code, so that equal codes mean equal campaigns across releases."""
    combined = np.zeros(table.num_rows, np.int64)
    dictionaries = []
    for name in names:
        encoded = pc.dictionary_encode(table[name].combine_chunks())
        values = encoded.dictionary.to_pylist()
        dictionaries.append([None, *values])
        indices = pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy() + 1
        combined = combined * (len(values) + 1) + indices
    uniques, inverse = np.unique(combined, return_inverse=True)
    lookup = np.empty(len(uniques), np.int32)
    for index, packed in enumerate(uniques.tolist()):
        values_of: list[str | None] = []
        for dictionary in reversed(dictionaries):
            packed, position = divmod(packed, len(dictionary))
            values_of.append(dictionary[position])
        campaign = tuple(reversed(values_of))
        lookup[index] = store.campaign_code(
            None if all(value is None for value in campaign) else campaign
        )
    return lookup[inverse.ravel()]
