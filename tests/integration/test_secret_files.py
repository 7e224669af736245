"""Files and secrets on disk, through the real CLI: what a run writes under the data
dir is its owner's alone; an empty or unprotected salt or site key is refused at start;
expired salts and the staging copies a killed process left are removed by every command
that touches salts, not only by a running collector."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from pipeline.config import Settings
from tests.conftest import _shared_prefect, clean_env, free_port, run_cli, settings_env
from tests.integration.conftest import start_collector

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def open_to_others(root: Path) -> list[str]:
    """Every file or directory under root with a group or other permission bit."""
    found = []
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077 and not path.is_symlink():
                found.append(f"{path.relative_to(root)} {mode:04o}")
    return sorted(found)


def test_a_real_run_leaves_nothing_readable_by_others(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(kafka_settings, SESSIONFLOW_SITES='["shop.example"]')
    assert run_cli(env, "topics").returncode == 0
    collector = start_collector(
        {**env, "SESSIONFLOW_COLLECTOR__PORT": str(free_port())}, tmp_path / "collector.log"
    )
    try:
        for page in ("/", "/shoes", "/cart"):
            answer = httpx.post(
                f"{collector.url}/api/event",
                content=json.dumps({"name": "page_view", "url": f"https://shop.example{page}"}),
                headers={"User-Agent": IPHONE, "Content-Type": "text/plain"},
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
    finally:
        collector.stop()
    consumed = run_cli(env, "consume", "--until-caught-up")
    assert "wrote 3 to the lake" in consumed.stdout, consumed.stderr
    today = datetime.now(UTC).date().isoformat()
    built = run_cli(env, "run", "daily", "--date", today)
    assert built.returncode in (0, 4), built.stderr
    report = run_cli(env, "report")
    assert report.returncode == 0, report.stderr
    data = kafka_settings.data_dir
    for written in ("lake", "marts", "warehouse.duckdb", "report.html", "consumer-state",
                    "secrets/site_key", "secrets/salts"):  # fmt: skip
        assert (data / written).exists(), written
    assert open_to_others(data) == []


def _salt(directory: Path, day: object, mode: int = 0o600, content: bytes = b"s" * 32) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"salt-{day}"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _seed_leftovers(settings: Settings) -> dict[str, Path]:
    """An expired salt, today's, and staging copies: of a dead local process, of another
    host's process long gone (old), and of another host's process at work now (fresh)."""
    salts = settings.salt_dir
    today = datetime.now(UTC).date()
    host = socket.gethostname()
    seeded = {
        "expired": _salt(salts, today - timedelta(days=3)),
        "today": _salt(salts, today),
        "dead": salts / f".salt-{today}.staging.0123abcd.{_dead_pid()}@{host}",
        "old elsewhere": salts / f".salt-{today}.staging.0123abcd.1@another-host",
        "fresh elsewhere": salts / f".salt-{today}.staging.4567abcd.1@another-host",
        "key dead": settings.site_key_file.with_name(
            f".{settings.site_key_file.name}.staging.89abcdef.{_dead_pid()}@{host}"
        ),
    }
    for name in ("dead", "old elsewhere", "fresh elsewhere", "key dead"):
        seeded[name].write_bytes(b"k" * 32)
        seeded[name].chmod(0o600)
    hour_ago = datetime.now().timestamp() - 3600
    os.utime(seeded["old elsewhere"], (hour_ago, hour_ago))
    return seeded


@pytest.mark.parametrize("command", ["produce", "import", "consume"])
def test_commands_that_touch_salts_remove_expired_salts_and_staging_copies(
    kafka_settings: Settings, tmp_path: Path, command: str
) -> None:
    seeded = _seed_leftovers(kafka_settings)
    events = tmp_path / "events.jsonl"
    now = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events.write_text(
        json.dumps({"event_id": "e1", "event_name": "page_view", "event_ts": now,
                    "site_id": "shop.example", "visitor_id": "v1"}) + "\n"
    )  # fmt: skip
    args = {
        "produce": ("produce", "--file", str(events)),
        "import": ("import", str(events)),
        "consume": ("consume", "--until-caught-up"),
    }[command]
    result = run_cli(settings_env(kafka_settings), *args)
    assert result.returncode == 0, result.stderr
    left = {name for name, path in seeded.items() if path.exists()}
    assert left == {"today", "fresh elsewhere"}


def test_a_killed_collector_leaves_a_staging_copy_that_the_next_command_removes(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    # Killed between writing the site key's staging copy and linking it into place.
    env = settings_env(kafka_settings, SESSIONFLOW_FAULT="secret_staged:1")
    killed = run_cli(env, "collect", "--port", str(free_port()))
    assert killed.returncode == -9, killed.stderr
    key = kafka_settings.site_key_file
    staged = list(key.parent.glob(f".{key.name}.staging.*"))
    assert len(staged) == 1 and not key.exists()
    events = tmp_path / "none.jsonl"
    events.write_text("")
    run_cli(settings_env(kafka_settings), "import", str(events))
    assert not staged[0].exists()


@pytest.mark.parametrize(
    ("secret", "mode", "content", "expected"),
    [
        ("site key", 0o644, b"k" * 32, "is open to group or others (mode 0644): run `chmod 600"),
        ("site key", 0o600, b"", "holds 0 bytes, fewer than 16"),
        ("salt", 0o640, b"s" * 32, "is open to group or others (mode 0640): run `chmod 600"),
        ("salt", 0o600, b"", "holds 0 bytes, fewer than 16"),
    ],
)
def test_an_unprotected_or_empty_secret_is_refused_at_start(
    kafka_settings: Settings, secret: str, mode: int, content: bytes, expected: str
) -> None:
    if secret == "site key":
        path = kafka_settings.site_key_file
        path.parent.mkdir(parents=True, mode=0o700)
        path.write_bytes(content)
        path.chmod(mode)
    else:
        path = _salt(kafka_settings.salt_dir, datetime.now(UTC).date(), mode, content)
    # Refused at start: a collector that accepted the file would still run after 60 s.
    result = run_cli(
        settings_env(kafka_settings), "collect", "--port", str(free_port()), timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: secret file {path} {expected}" + (
        f" {path}`"
        if "chmod" in expected
        else ": restore it, or remove it so that a new one is made (what was derived from it changes)"
    ), result.stderr


def test_the_scheduled_daily_flow_destroys_expired_salts(tmp_path: Path) -> None:
    """`serve` runs for months: its daily run destroys expired salts though no
    collector runs and no other command starts."""
    data = tmp_path / "data"
    expired = _salt(data / "secrets" / "salts", datetime.now(UTC).date() - timedelta(days=3))
    config = tmp_path / "sessionflow.toml"
    config.write_text(f'data_dir = "{data}"\n')
    env = clean_env(PREFECT_API_URL=_shared_prefect.api_url())
    flow = subprocess.run(
        [sys.executable, "-c",
         f"from flows.deployments import scheduled_daily; scheduled_daily({str(config)!r})"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert flow.returncode == 0, flow.stderr[-2000:]
    assert not expired.exists()
