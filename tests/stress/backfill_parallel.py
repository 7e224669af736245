"""A 30-day backfill with --parallel 4, five times, each on a fresh warehouse: no
catalog conflict, no retry in any log.

    python -m tests.stress.backfill_parallel [WORKDIR]
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

from tests.stress.common import cli, fresh_copy, prepared_lake

RUNS = 5
DAYS = 30
TROUBLE = re.compile(r"conflict|Retry \d|retrying|Traceback", re.IGNORECASE)


def main(workdir: Path) -> int:
    source = prepared_lake(workdir, DAYS, events_per_day=2_000)
    clean = 0
    for run in range(1, RUNS + 1):
        env = fresh_copy(source, workdir / "run")
        started = time.perf_counter()
        result = cli(env, "backfill", "--start", "2026-11-01", "--end", "2026-11-30",
                     "--parallel", "4")  # fmt: skip
        seconds = time.perf_counter() - started
        log = result.stdout + result.stderr
        trouble = sorted({match.group(0) for match in TROUBLE.finditer(log)})
        built = log.count("not built yet: built")
        good = result.returncode in (0, 4) and built == DAYS and not trouble
        clean += good
        print(f"run {run}: exit {result.returncode}, {built}/{DAYS} days built in {seconds:.0f} s, "
              f"conflicts/retries: {trouble or 'none'}")  # fmt: skip
    print(f"{clean} of {RUNS} runs clean")
    return 0 if clean == RUNS else 1


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="stress-"))
    sys.exit(main(root))
