"""Run the benchmarks and write bench/results.md: `make bench` (or `make bench-quick`).

    .venv/bin/python -m bench.run                     # every section, full sizes
    .venv/bin/python -m bench.run --quick             # a subset, small sizes (< 3 min)
    .venv/bin/python -m bench.run --only sessionizer  # one section
    .venv/bin/python -m bench.run --only warehouse --skip-history
        # the warehouse rows without building the 35 days of history first (a build that
        # re-reads the raw lake does not need them; rows 10 and 11's history are left out)

Each section module has `run(bootstrap, quick) -> list[Figure]` and says whether it
needs the broker (`NEEDS_BROKER`); a private broker is started once for those.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from bench import (
    bench_collector,
    bench_consumer,
    bench_producer,
    bench_sessionizer,
    bench_warehouse,
)
from bench.common import Figure, private_broker

SECTIONS: dict[str, ModuleType] = {
    "consumer": bench_consumer,
    "sessionizer": bench_sessionizer,
    "collector": bench_collector,
    "producer": bench_producer,
    "warehouse": bench_warehouse,
}
QUICK_SECTIONS = ("sessionizer", "producer", "consumer")
RESULTS = Path(__file__).parent / "results.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset at small sizes")
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--output", type=Path, help=f"default: {RESULTS} (full runs only)")
    parser.add_argument(
        "--skip-history",
        action="store_true",
        help="warehouse: measure the last day without building its history first",
    )
    args = parser.parse_args(argv)
    names = args.only or (list(QUICK_SECTIONS) if args.quick else list(SECTIONS))
    modules = [SECTIONS[name] for name in names]
    figures: list[Figure] = []
    with _broker_if_needed(modules) as bootstrap:
        for name, module in zip(names, modules, strict=True):
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            if module is bench_warehouse:
                figures += module.run(bootstrap, args.quick, build_history=not args.skip_history)
            else:
                figures += module.run(bootstrap, args.quick)
    text = render(figures, quick=args.quick, sections=names)
    sys.stdout.write(text)
    partial = args.quick or args.only or args.skip_history
    output = args.output or (RESULTS if not partial else None)
    if output:
        output.write_text(text, encoding="utf-8")
        print(f"bench: wrote {output}", file=sys.stderr)


@contextlib.contextmanager
def _broker_if_needed(modules: list[ModuleType]) -> Iterator[str]:
    if not any(getattr(module, "NEEDS_BROKER", False) for module in modules):
        yield ""
        return
    with private_broker() as broker:
        yield broker.bootstrap


def render(figures: list[Figure], *, quick: bool, sections: list[str]) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        "# sessionflow benchmarks",
        "",
        f"Written by `make bench{'-quick' if quick else ''}` at commit `{commit or '?'}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Sections: {', '.join(sections)}.",
        "",
        f"Machine: {machine()}.",
        "",
        "Every figure is a median of repeated runs; every ratio is against a baseline "
        "measured in the same run on the same (shared, noisy) machine. Load generators "
        "and brokers share the same 2 cores as the code measured.",
        "",
        "| # | what was measured | project | baseline (same run) | ratio | target | command |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.row} | {f.what} | {_number(f.project)} {f.unit} "
            f"| {f.baseline_what}: {_number(f.baseline)} {f.unit} | {f.ratio:.2f} "
            f"| {f.target} | `{f.command}` |"
        )
    notes = [f"- **{f.row}**: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def machine() -> str:
    """The machine the figures were measured on: CPU model, cores this process may use,
    memory, OS and Python (Linux's /proc files; "unknown" elsewhere)."""
    cpu = _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU"
    memory_kb = _proc_field("/proc/meminfo", "MemTotal").removesuffix(" kB")
    memory = f"{int(memory_kb) / 2**20:.0f} GiB memory" if memory_kb.isdigit() else "memory ?"
    try:
        system = platform.freedesktop_os_release()["PRETTY_NAME"]
    except (OSError, KeyError):
        system = platform.system()
    return (
        f"{cpu} ({platform.machine()}), {len(os.sched_getaffinity(0))} cores, {memory}; "
        f"{system}, kernel {platform.release()}; Python {platform.python_version()}"
    )


def _proc_field(path: str, field: str) -> str:
    """The value of the first `field: value` line of a /proc file, or ""."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == field:
                return value.strip()
    return ""


if __name__ == "__main__":
    main()
