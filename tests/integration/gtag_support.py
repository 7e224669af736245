"""A running collector that knows shop.example's GA4 measurement id, for the /g/collect tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.conftest import RunningCollector, running_collector

MEASUREMENT_ID = "G-SHOP1234"


@contextmanager
def gtag_collector(bootstrap: str, directory: Path) -> Iterator[RunningCollector]:
    # The [ga4] section as one TOML value: its keys are site names, with dots.
    stream = f'{{"shop.example" = {{measurement_id = "{MEASUREMENT_ID}"}}}}'
    with running_collector(bootstrap, directory, SESSIONFLOW_GA4=stream) as running:
        yield running
