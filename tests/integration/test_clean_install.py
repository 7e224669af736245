"""A clean install works as a user meets it: the wheel built from this checkout, installed
with its runtime dependencies only (constrained to requirements.lock) into an empty venv,
then every module imported, every command's `--help` and a small import -> costs load ->
backfill -> query -> report run with the installed `sessionflow`, in a data directory
outside the checkout, with the checkout on no path. A failed build or install fails here
with the command and its output; nothing skips."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from pipeline.kafka.broker import _default_jar_cache_root
from tests.conftest import _SharedPrefect
from tests.locks import DEV_LOCK, ROOT, RUNTIME_LOCK, applicable_pins

PACKAGES = ("pipeline", "flows")  # the import packages the wheel installs
SITE = "shop.example"
D1, D2 = "2026-11-10", "2026-11-11"


@dataclass(frozen=True)
class CleanInstall:
    venv: Path
    home: Path  # the user's home and working directory: outside the checkout

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def sessionflow(self) -> Path:
        return self.venv / "bin" / "sessionflow"

    def env(self) -> dict[str, str]:
        """A user's environment: no sessionflow, Kafka, Prefect or venv settings, a home of
        its own (no ~/.prefect found by accident), the venv first on PATH and nothing of
        the checkout on it."""
        kept = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SESSIONFLOW_", "KAFKA_", "PREFECT_", "PYTHON", "VIRTUAL_ENV"))
        }
        path = [str(self.venv / "bin")] + [
            entry
            for entry in os.environ.get("PATH", "").split(os.pathsep)
            if entry and not Path(entry).resolve().is_relative_to(ROOT)
        ]
        return {**kept, "HOME": str(self.home), "PATH": os.pathsep.join(path)}

    def run(self, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        """`args` run as the user, in their home; `env` adds to their environment."""
        return subprocess.run(
            [str(arg) for arg in args], cwd=self.home, env={**self.env(), **env},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip


def must(step: str, result: subprocess.CompletedProcess[str]) -> str:
    """The output of a step that must succeed; otherwise the test fails saying which step,
    the command and its output."""
    if result.returncode != 0:
        pytest.fail(
            f"{step} failed (exit {result.returncode}): {' '.join(map(str, result.args))}\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    return result.stdout


def uv() -> str:
    """The uv that `make setup` installs beside the test's Python (UV_VERSION)."""
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        pytest.fail("uv not found beside the test's Python or on PATH: run `make setup`")
    return found


@pytest.fixture(scope="module")
def clean_install(tmp_path_factory: pytest.TempPathFactory) -> CleanInstall:
    base = tmp_path_factory.mktemp("clean-install")
    assert not base.resolve().is_relative_to(ROOT)
    home = base / "home"
    home.mkdir()
    installed = CleanInstall(base / "venv", home)
    # An sdist, then the wheel built from it: what the sdist misses, the wheel misses too,
    # and no stale build/ directory of the checkout reaches the wheel.
    must("building the wheel", subprocess.run(
        [uv(), "build", "--quiet", "--out-dir", str(base / "dist"), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    ))  # fmt: skip
    (wheel,) = (base / "dist").glob("sessionflow-*.whl")
    must("creating an empty venv", installed.run(uv(), "venv", "--quiet", "--python",
                                                 "python3.11", installed.venv))  # fmt: skip
    must("installing the wheel with its runtime dependencies", installed.run(
        uv(), "pip", "install", "--quiet", "--python", installed.python,
        "--constraints", RUNTIME_LOCK, wheel,
    ))  # fmt: skip
    return installed


def test_the_install_holds_exactly_the_runtime_lock(clean_install: CleanInstall) -> None:
    frozen = must("listing the venv", clean_install.run(
        uv(), "pip", "freeze", "--python", clean_install.python))  # fmt: skip
    pins = [line.split("==") for line in frozen.splitlines() if "==" in line]
    installed = {canonicalize_name(name): version for name, version in pins}
    # sessionflow itself is listed as `sessionflow @ file://...`
    runtime = applicable_pins(RUNTIME_LOCK)
    dev_only = set(applicable_pins(DEV_LOCK)) - set(runtime)
    assert {"pytest", "pandas", "playwright", "ruff"} <= dev_only

    assert sorted(dev_only & installed.keys()) == []
    assert installed == runtime
    assert any(line.startswith("sessionflow @ file:") for line in frozen.splitlines())


IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
names = []
for package in sys.argv[1:]:
    module = importlib.import_module(package)
    names.append(package)
    names += [info.name for info in pkgutil.walk_packages(module.__path__, package + ".")]
files = {name: importlib.import_module(name).__file__ for name in names}
print(json.dumps(files))
"""


def test_every_module_of_the_package_imports_from_the_install(
    clean_install: CleanInstall,
) -> None:
    out = must("importing every module", clean_install.run(
        clean_install.python, "-c", IMPORT_EVERY_MODULE, *PACKAGES))  # fmt: skip
    files: dict[str, str] = json.loads(out)
    in_checkout = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }

    assert set(files) == in_checkout
    site_packages = clean_install.venv / "lib" / "python3.11" / "site-packages"
    assert all(Path(file).is_relative_to(site_packages) for file in files.values())


def commands_of(help_text: str) -> list[str]:
    """The subcommands a click group's --help lists under `Commands:`."""
    listed = help_text.partition("\nCommands:\n")[2]
    return re.findall(r"^  (\S+)", listed, flags=re.MULTILINE)


def test_every_command_and_subcommand_shows_its_help(clean_install: CleanInstall) -> None:
    def help_of(path: tuple[str, ...]) -> str:
        out = must(f"sessionflow {' '.join(path)} --help",
                   clean_install.run(clean_install.sessionflow, *path, "--help"))  # fmt: skip
        assert out.startswith(f"Usage: sessionflow {' '.join(path)}".rstrip()), out
        return out

    shown: dict[tuple[str, ...], str] = {(): help_of(())}
    level: list[tuple[str, ...]] = [(name,) for name in commands_of(shown[()])]
    assert {"import", "costs", "backfill", "query", "report"} <= {p[0] for p in level}
    with ThreadPoolExecutor(max_workers=4) as pool:
        while level:
            texts = dict(zip(level, pool.map(help_of, level), strict=True))
            shown.update(texts)
            level = [(*path, name) for path, text in texts.items() for name in commands_of(text)]

    assert ("costs", "load") in shown and ("broker", "start") in shown
    assert len(shown) > 20


def test_the_local_broker_finds_its_files_in_the_install(clean_install: CleanInstall) -> None:
    # infra/kafka/ ships in the wheel: its pom names Kafka's version and keys the jar cache
    # (`make setup` filled the user's; resolving it anew would take Maven minutes).
    cache = _default_jar_cache_root()
    config = clean_install.home / "broker.toml"
    config.write_text(f'[kafka]\njar_cache_dir = "{cache}"\n')
    pom = (ROOT / "infra" / "kafka" / "pom.xml").read_bytes()
    (version,) = re.findall(rb"<kafka.version>([^<]+)</kafka.version>", pom)
    digest = hashlib.sha256(pom).hexdigest()[:12]

    said = must("sessionflow broker jars", clean_install.run(
        clean_install.sessionflow, "--config", config, "broker", "jars"))  # fmt: skip

    jars = cache / f"{version.decode()}-{digest}" / "lib"
    assert said == f"Apache Kafka {version.decode()} jars: {jars}\n"


def write_inputs(directory: Path) -> tuple[Path, Path, Path]:
    """A config, events and costs a user would write: sessions by hand, GA4's 30 minutes
    of inactivity between them. D1: v1 twice (09:00 and 09:10, then 11:00 -> 2 sessions),
    v2 from a google/cpc ad (1) = 3 sessions; D2: v3, a page view and its purchase of
    25 USD (1 session)."""
    config = directory / "sessionflow.toml"
    config.write_text(f'sites = ["{SITE}"]\ndata_dir = "{directory / "data"}"\n')

    def event(event_id: str, ts: str, visitor: str, **fields: object) -> str:
        return json.dumps({"event_id": event_id, "event_name": "page_view", "event_ts": ts,
                           "site_id": SITE, "visitor_id": visitor, **fields})  # fmt: skip

    events = directory / "events.jsonl"
    lines = [
        event("e1", f"{D1}T09:00:00Z", "v1"),
        event("e2", f"{D1}T09:10:00Z", "v1"),
        event("e3", f"{D1}T11:00:00Z", "v1"),
        event("e4", f"{D1}T15:00:00Z", "v2", utm_source="google", utm_medium="cpc"),
        event("e5", f"{D2}T08:00:00Z", "v3"),
        event("e6", f"{D2}T08:05:00Z", "v3", event_name="purchase", value=25.0,
              currency="USD", transaction_id="t1"),
    ]  # fmt: skip
    events.write_text("\n".join(lines) + "\n")
    costs = directory / "costs.csv"
    costs.write_text(f"date,source,medium,cost,currency\n{D1},google,cpc,8,USD\n")
    return config, events, costs


def test_a_small_run_outside_the_checkout(
    clean_install: CleanInstall, shared_prefect_server: _SharedPrefect
) -> None:
    config, events, costs = write_inputs(clean_install.home)

    def sessionflow(*args: str | Path, **env: str) -> str:
        step = f"sessionflow {' '.join(map(str, args))}"
        command = (clean_install.sessionflow, "--config", config, *args)
        return must(step, clean_install.run(*command, **env))

    sessionflow("import", events)
    sessionflow("costs", "load", costs)
    # The flow runs on a Prefect server, as README's "Running it for real" sets one up: the
    # test session's (the same Prefect version; its temporary server is tested elsewhere).
    built = sessionflow("backfill", "--start", D1, "--end", D2,
                        PREFECT_API_URL=shared_prefect_server.api_url())  # fmt: skip
    assert f"{D1}: not built yet: built" in built and f"{D2}: not built yet: built" in built
    rows = json.loads(sessionflow(
        "query", "--format", "json",
        "SELECT CAST(date AS VARCHAR) AS date, sessions, cost, revenue "
        "FROM daily_site_summary ORDER BY date",
    ))  # fmt: skip
    report = clean_install.home / "report.html"
    said = sessionflow("report", "--out", report)

    assert [(row["date"], row["sessions"]) for row in rows] == [(D1, 3), (D2, 1)]
    assert rows[0]["cost"] == 8.0 and rows[1]["revenue"] == 25.0
    assert str(report) in said
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and SITE in html
    data = clean_install.home / "data"
    assert (data / "warehouse.duckdb").is_file() and (data / "marts").is_dir()
