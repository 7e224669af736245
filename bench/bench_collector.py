"""Collector requests/s and events/s on loopback, measured with wrk (Debian's package).

Baseline: GET /health on the same server in the same run, i.e. the HTTP stack with no
ingestion work; the ratio says what the ingestion pipeline costs on top of it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import REPEATS, free_port, report
from pipeline.errors import SessionflowError

DURATION_S = 10
CONNECTIONS = 32
GA4_EVENTS_PER_REQUEST = 10  # as in wrk/ga4.lua

SCRIPTS = Path(__file__).parent / "wrk"


def wrk(url: str, script: Path | None) -> float:
    command = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", "--latency"]
    if script:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        raise SessionflowError(f"wrk saw {non_2xx.group(1)} error responses from {url}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def run(bootstrap: str) -> str:
    if shutil.which("wrk") is None:
        raise SessionflowError("wrk not found: apt-get install wrk")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sessionflow-bench-") as directory:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SESSIONFLOW_DATA_DIR": directory,
            "SESSIONFLOW_KAFKA__EVENTS_TOPIC": f"bench.{uuid.uuid4().hex[:8]}",
            "SESSIONFLOW_COLLECTOR__CLIENT_IP_HEADER": "X-Forwarded-For",
            "SESSIONFLOW_COLLECTOR__BUFFER_MAX_EVENTS": "10000000",
            "PATH": "/usr/bin:/bin",
        }
        collector = subprocess.Popen(
            [str(Path(".venv/bin/sessionflow").resolve()), "collect", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base)
            runs: dict[str, list[float]] = {"health": [], "plainsignal": [], "ga4": []}
            for _ in range(REPEATS):  # interleaved, so drift hits every measure alike
                runs["health"].append(wrk(f"{base}/health", None))
                runs["plainsignal"].append(wrk(f"{base}/api/event", SCRIPTS / "plainsignal.lua"))
                runs["ga4"].append(
                    wrk(f"{base}/mp/collect?measurement_id=shop.example", SCRIPTS / "ga4.lua")
                )
        finally:
            collector.terminate()
            collector.wait(timeout=60)
    health, plain, ga4 = (sorted(v)[len(v) // 2] for v in runs.values())
    return report(
        f"Collector on loopback (wrk, 1 thread, {CONNECTIONS} connections, "
        f"{DURATION_S}s x {REPEATS})",
        [
            ("GET /health (baseline)", health, "requests/s"),
            ("POST /api/event (PlainSignal)", plain, "requests/s = events/s"),
            ("POST /mp/collect (GA4, 10 events)", ga4, "requests/s"),
            ("POST /mp/collect (GA4, 10 events)", ga4 * GA4_EVENTS_PER_REQUEST, "events/s"),
        ],
        ("PlainSignal requests/s / baseline", plain / health),
    )


def _wait_until_up(base: str) -> None:
    for _ in range(100):
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SessionflowError("collector did not start")
