"""Run every benchmark on a private local broker: `make bench` (or python -m bench.run)."""

from __future__ import annotations

import sys

from bench import bench_collector, bench_consumer, bench_producer, bench_warehouse
from bench.common import private_broker


def main() -> None:
    with private_broker() as broker:
        sections = [
            bench_producer.run(broker.bootstrap),
            bench_collector.run(broker.bootstrap),
            bench_consumer.run(broker.bootstrap),
            bench_warehouse.run(broker.bootstrap),
        ]
    sys.stdout.write("\n".join(sections))


if __name__ == "__main__":
    main()
