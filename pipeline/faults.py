"""Named points where a test can kill the process, deterministically.

Set SESSIONFLOW_FAULT=<point>:<n> (for example `after_marts:2`) and the process SIGKILLs
itself the n-th time it passes that point. Tests use it to land a kill exactly between a
build's commit and its marts, or a consumer's snapshot and its offset commit, instead of
racing a timer. Unset (always, outside tests) it does nothing.
"""

from __future__ import annotations

import os
import signal
import threading

from pipeline.config import FAULT_ENV

POINTS = ("after_commit", "after_marts", "after_manifest")  # a warehouse build's
CONSUMER_POINTS = ("after_lake_write", "after_snapshot")  # a consumer cycle's
REBALANCE_POINTS = ("on_revoke", "on_assign")  # a consumer's rebalance listener's
_passed: dict[str, int] = {}
_lock = threading.Lock()


def fault_point(name: str) -> None:
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    with _lock:
        _passed[name] = _passed.get(name, 0) + 1
        if _passed[name] == int(count or "1"):
            os.kill(os.getpid(), signal.SIGKILL)
