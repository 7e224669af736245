"""A running collector that knows shop.example's GA4 measurement id, for the /g/collect tests.

`[ga4."shop.example"]` has a dotted key no environment variable can name, so it comes from
a config file (SESSIONFLOW_CONFIG); everything else as for the other collector tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port
from tests.integration.conftest import RunningCollector, collector_env, start_collector

MEASUREMENT_ID = "G-SHOP1234"


@contextmanager
def gtag_collector(bootstrap: str, directory: Path) -> Iterator[RunningCollector]:
    config = directory / "sessionflow.toml"
    config.write_text(f'[ga4."shop.example"]\nmeasurement_id = "{MEASUREMENT_ID}"\n')
    env = collector_env(
        bootstrap,
        directory / "data",
        free_port(),
        f"test.{uuid.uuid4().hex[:10]}",
        SESSIONFLOW_CONFIG=str(config),
        SESSIONFLOW_COLLECTOR__CLIENT_IP_HEADER="X-Forwarded-For",
        SESSIONFLOW_PRIVACY__COUNTRY_HEADER="CF-IPCountry",
    )
    running = start_collector(env, directory / "collector.log")
    try:
        yield running
    finally:
        running.stop()
