"""Shared pieces of the benchmarks: a private broker, repetitions, medians, figures.

Every figure is the median of several runs, and every headline is a ratio against a
baseline measured in the same run on the same machine (it is shared and noisy).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.kafka.broker import LocalBroker

REPEATS = 3


@dataclass(frozen=True)
class Figure:
    """One row of bench/results.md: the project's figure against a same-run baseline.

    `ratio` is project / baseline as measured; `target` says which way is better
    (for example "≥ 0.8" for a rate, "≤ 1.3" for a wall time).
    """

    row: str  # the row number, e.g. "1" or "6b"
    what: str  # what was measured, and on how much data
    project: float
    baseline: float
    unit: str  # e.g. "events/s", "s", "bytes per visitor"
    baseline_what: str
    target: str
    command: str  # reproduces this row alone
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.project / self.baseline if self.baseline else float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def private_broker() -> Iterator[LocalBroker]:
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        broker = LocalBroker(
            Path(directory) / "kafka", port=free_port(), controller_port=free_port(), heap_mb=1024
        )
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


def median_rate(run: Callable[[], tuple[int, float]], repeats: int = REPEATS) -> float:
    """run() -> (items, seconds); the median of items/second over `repeats` runs."""
    rates = []
    for _ in range(repeats):
        items, seconds = run()
        rates.append(items / seconds)
    return statistics.median(rates)


def timed(action: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    items = action()
    return items, time.perf_counter() - started


def command_for(section: str) -> str:
    return f".venv/bin/python -m bench.run --only {section}"
