"""Secret files: refused when unprotected or empty; staging copies of killed processes
removed, and only those; shredding a staging copy never touches the live secret."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.errors import SecretFileError
from pipeline.privacy.ids import SiteKeys
from pipeline.privacy.salts import SaltStore
from pipeline.privacy.secrets import (
    read_or_create_secret,
    read_secret,
    read_secret_text,
    remove_abandoned_staging,
    shred,
)


def secret_file(path: Path, content: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610])
def test_a_secret_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = secret_file(tmp_path / "site_key", b"k" * 32, mode)
    with pytest.raises(SecretFileError, match=rf"mode {mode:04o}\): run `chmod 600 "):
        read_secret(path)
    with pytest.raises(SecretFileError):
        SiteKeys(path)


@pytest.mark.parametrize("content", [b"", b"short"])
def test_an_empty_or_short_secret_is_refused(tmp_path: Path, content: bytes) -> None:
    path = secret_file(tmp_path / "site_key", content)
    with pytest.raises(SecretFileError, match=f"holds {len(content)} bytes, fewer than 16"):
        read_or_create_secret(path)


def test_a_kept_salt_is_checked_and_an_expired_one_destroyed_unread(tmp_path: Path) -> None:
    store = SaltStore(tmp_path, "UTC", keep_previous=timedelta(minutes=30))
    now = datetime(2026, 11, 17, 12, tzinfo=UTC)
    expired = secret_file(tmp_path / "salt-2026-11-15", b"s" * 32, 0o644)
    store.check(now)  # an expired salt is destroyed, whatever its mode
    assert not expired.exists()
    secret_file(tmp_path / "salt-2026-11-17", b"s" * 32, 0o644)
    with pytest.raises(SecretFileError, match="salt-2026-11-17 is open to group or others"):
        store.check(now)


def test_password_file(tmp_path: Path) -> None:
    assert read_secret_text(secret_file(tmp_path / "pw", b"hunter2-pass\n")) == "hunter2-pass"
    with pytest.raises(SecretFileError, match="holds no password"):
        read_secret_text(secret_file(tmp_path / "empty", b"\n"))
    with pytest.raises(SecretFileError, match="does not exist"):
        read_secret_text(tmp_path / "absent")


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_only_abandoned_staging_copies_are_removed(tmp_path: Path) -> None:
    host = socket.gethostname()
    keep = {
        "salt-2026-11-17": b"s" * 32,  # a salt, not a staging copy
        ".salt-backup": b"b",  # an operator's file that only looks alike
        f".salt-2026-11-17.staging.0123abcd.{os.getpid()}@{host}": b"live",  # ours, at work
        ".salt-2026-11-17.staging.0123abcd.1@elsewhere": b"fresh",  # another host's, at work
        f".other.staging.0123abcd.{_dead_pid()}@{host}": b"another secret's",
    }
    gone = {
        f".salt-2026-11-17.staging.0123abcd.{_dead_pid()}@{host}": b"dead",
        ".salt-2026-11-16.staging.89abcdef.1@elsewhere": b"old",
        ".salt-2026-11-16.4242.89abcdef": b"old, in the former naming",
    }
    for name, content in {**keep, **gone}.items():
        secret_file(tmp_path / name, content)
    for name in (".salt-2026-11-16.staging.89abcdef.1@elsewhere", ".salt-2026-11-16.4242.89abcdef"):
        os.utime(tmp_path / name, (0, 0))
    assert remove_abandoned_staging(tmp_path, "salt-") == len(gone)
    assert {path.name for path in tmp_path.iterdir()} == set(keep)


def test_shredding_a_linked_staging_copy_keeps_the_secret(tmp_path: Path) -> None:
    # A process killed after its link: the staging copy is a second name of the secret.
    secret = secret_file(tmp_path / "site_key", b"k" * 32)
    staging = tmp_path / ".site_key.staging.0123abcd.1@elsewhere"
    os.link(secret, staging)
    shred(staging)
    assert not staging.exists()
    assert secret.read_bytes() == b"k" * 32
    shred(secret)  # its last name: overwritten, then gone
    assert not secret.exists()
