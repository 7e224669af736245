"""ISO code lists (ISO 4217 currencies, ISO 3166-1 alpha-2 countries), shipped as data."""

from __future__ import annotations

from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data" / "codes"


@cache
def _codes(filename: str) -> frozenset[str]:
    lines = (DATA_DIR / filename).read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def currency_codes() -> frozenset[str]:
    return _codes("iso4217.txt")


def country_codes() -> frozenset[str]:
    return _codes("iso3166_alpha2.txt")
