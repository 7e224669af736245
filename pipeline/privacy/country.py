"""Country from a trusted proxy header or a user-supplied GeoIP database, never from a
stored IP."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import maxminddb

from pipeline.events.codes import country_codes


class CountryResolver:
    def __init__(self, header: str | None, geoip_database: Path | None) -> None:
        self.header = header.lower() if header else None
        self._reader = maxminddb.open_database(str(geoip_database)) if geoip_database else None

    def country(self, headers: Mapping[str, str], ip: str) -> str | None:
        if self.header is not None:
            value = headers.get(self.header, "").strip().upper()
            return value if value in country_codes() else None
        if self._reader is not None:
            record = self._reader.get(ip)
            if isinstance(record, dict):
                country = record.get("country")
                if isinstance(country, dict):
                    code = country.get("iso_code")
                    return code if isinstance(code, str) and code in country_codes() else None
        return None
