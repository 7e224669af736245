"""A backfill SIGKILLed at 10 random points (fault hook: after a commit, after the marts,
after the manifest, at a random pass), each followed by a plain re-run: every re-run
builds exactly the days not recorded as built, and ends identical to an uninterrupted run.

    python -m tests.stress.kill_resume [WORKDIR] [SEED]
"""

from __future__ import annotations

import random
import signal
import sys
import tempfile
from pathlib import Path

from pipeline.faults import POINTS
from tests.stress.common import (
    backfill_killed_at,
    cli,
    fresh_copy,
    mart_tables,
    prepared_lake,
    recorded_days,
)

KILLS = 10
DAYS = 8
RANGE = ("--start", "2026-11-01", "--end", f"2026-11-0{DAYS}")


def main(workdir: Path, seed: int) -> int:
    rng = random.Random(seed)
    source = prepared_lake(workdir, DAYS, events_per_day=1_500)
    whole_env = fresh_copy(source, workdir / "whole")
    assert cli(whole_env, "backfill", *RANGE).returncode in (0, 4)
    expected = mart_tables(workdir / "whole" / "marts")
    passed = 0
    for kill in range(1, KILLS + 1):
        fault = f"{rng.choice(POINTS)}:{rng.randint(1, DAYS)}"
        data_dir = workdir / "killed"
        env = fresh_copy(source, data_dir)
        status = backfill_killed_at(env, fault, *RANGE, "--parallel", "2")
        up_to_date = recorded_days(data_dir)
        resumed = cli(env, "backfill", *RANGE)
        rebuilt_exactly = all(
            (f"{day}: up to date" in resumed.stdout) == (day in up_to_date)
            for day in (f"2026-11-0{n}" for n in range(1, DAYS + 1))
        )
        same = mart_tables(data_dir / "marts") == expected
        good = (
            status == -signal.SIGKILL and resumed.returncode in (0, 4) and rebuilt_exactly and same
        )
        passed += good
        print(f"kill {kill} at {fault}: killed={status == -signal.SIGKILL}, "
              f"{len(up_to_date)} days recorded, re-run built exactly the rest={rebuilt_exactly}, "
              f"identical to uninterrupted={same}")  # fmt: skip
    print(f"{passed} of {KILLS} kills resumed to identical tables")
    return 0 if passed == KILLS else 1


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="stress-"))
    sys.exit(main(root, int(sys.argv[2]) if len(sys.argv) > 2 else 2026))
