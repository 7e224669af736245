"""Shared pieces of the benchmarks: a private broker, repetitions, medians, ratios.

Every figure is the median of several runs, and every headline is a ratio against a
baseline measured in the same run on the same machine (it is shared and noisy).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.kafka.broker import LocalBroker

REPEATS = 3


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


def report(title: str, rows: list[tuple[str, float, str]], ratio: tuple[str, float]) -> str:
    lines = [f"## {title}", "", "| measure | median | unit |", "|---|---:|---|"]
    lines += [f"| {name} | {value:,.0f} | {unit} |" for name, value, unit in rows]
    lines += ["", f"**{ratio[0]}: {ratio[1]:.2f}**", ""]
    return "\n".join(lines)
