"""Shared pieces of the reliability suite: fixed hypothesis settings, file-tree snapshots
and the "named rejection" rule every hostile input is held to."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings

from pipeline.errors import SessionflowError


# Stable in CI: the same examples every run (derandomize), no example database written into
# the working tree, no deadline (a loaded 2-core machine is slow, not wrong).
def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def cli_env(**values: str) -> dict[str, str]:
    """This process's environment without sessionflow, Kafka or Prefect server settings,
    plus `values`. Not tests.conftest.clean_env: that one starts the session's Prefect
    server for flow commands, and none of these commands may get as far as Prefect."""
    prefixes = ("SESSIONFLOW_", "KAFKA_", "PREFECT_API_URL")
    env = {name: value for name, value in os.environ.items() if not name.startswith(prefixes)}
    env.update(values)
    return env


def tree(root: Path) -> set[str]:
    """Every path under root (relative), directories included."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


def assert_one_line(error: SessionflowError) -> None:
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert "\n" not in message and "\r" not in message, repr(message[:300])


class Outcomes:
    """Counts what a fuzz target did with its inputs, for the run's summary line."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, outcome: str, n: int = 1) -> None:
        self.counts[outcome] += n

    def line(self, name: str) -> str:
        tried = sum(self.counts.values())
        detail = ", ".join(f"{key} {value}" for key, value in sorted(self.counts.items()))
        return f"{name}: {tried} inputs ({detail})"
