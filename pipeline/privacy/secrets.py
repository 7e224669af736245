"""Secret files (daily salts, the site key, the Kafka password and key): random ones
created exactly once even when several processes race, every one owner-only and checked
when read, and the staging copies of a process killed while creating one removed."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path

from pipeline.errors import SecretFileError
from pipeline.faults import fault_point

MIN_SECRET_BYTES = 16  # 128 bits: less is a truncated or hand-made file, not a key
MAX_SECRET_BYTES = 1 << 16  # a secret file is a few bytes; this bounds a wrong path
# A process holds its staging copy for the milliseconds of a write and a link: an older
# one (from any host on a shared directory) belongs to a process that was killed.
STAGING_MAX_AGE_S = 60.0
_STAGING_MARK = ".staging."
# ".<name>.staging.<hex>.<pid>@<host>", or the older ".<name>.<pid>.<hex>".
_STAGING = re.compile(r"\.(?P<name>.+?)(?:\.staging\.[0-9a-f]{8}\.\d+@.*|\.\d+\.[0-9a-f]{8})")


def read_secret(path: Path, *, min_bytes: int = MIN_SECRET_BYTES) -> bytes | None:
    """The bytes of the secret file `path`, or None when there is none. Refused, with the
    fix, when it is not a regular file, is open to group or others, or is shorter than
    `min_bytes` (an empty file would make every hash guessable)."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretFileError(f"cannot read secret file {path}: {exc.strerror}") from None
    with handle:
        info = os.fstat(handle.fileno())  # the file opened, not the name: no race
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"secret file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise SecretFileError(
                f"secret file {path} is open to group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): run `chmod 600 {path}`"
            )
        data = handle.read(MAX_SECRET_BYTES + 1)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretFileError(f"secret file {path} is larger than {MAX_SECRET_BYTES} bytes")
    if len(data) < min_bytes:
        raise SecretFileError(
            f"secret file {path} holds {len(data)} bytes, fewer than {min_bytes}: restore it, "
            "or remove it so that a new one is made (what was derived from it changes)"
        )
    return data


def read_secret_text(path: Path) -> str:
    """A password file: owner-only, its text without the final newline."""
    data = read_secret(path, min_bytes=1)
    if data is None:
        raise SecretFileError(f"secret file {path} does not exist")
    try:
        text = data.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise SecretFileError(f"secret file {path} is not UTF-8 text") from None
    if not text:
        raise SecretFileError(f"secret file {path} holds no password")
    return text


def read_or_create_secret(path: Path, size: int = 32) -> bytes:
    """The secret in `path`; if absent, a new random one, created atomically (mode 0600).

    Written to a private staging file, then hard-linked into place: the link fails if
    another process got there first, and then everyone reads the winner's secret. Staging
    copies that killed processes left of this secret are removed first.
    """
    remove_abandoned_staging(path.parent, path.name)
    existing = read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = path.with_name(_staging_name(path.name))
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(size))
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("secret_staged")
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    created = read_secret(path)
    if created is None:  # removed in between by the operator: nothing to hash with
        raise SecretFileError(f"secret file {path} vanished while it was created")
    return created


def remove_abandoned_staging(directory: Path, name_prefix: str) -> int:
    """Remove the staging copies of secrets named `name_prefix*` in `directory` that a
    killed process left: its process is gone (same host), or it is older than a live
    process ever keeps one. Returns how many were removed."""
    try:
        candidates = list(directory.glob(f".{name_prefix}*"))
    except OSError:
        return 0
    removed = 0
    for staging in candidates:
        match = _STAGING.fullmatch(staging.name)
        if match and match["name"].startswith(name_prefix) and _abandoned(staging):
            shred(staging)
            removed += 1
    return removed


def shred(path: Path) -> None:
    """Overwrite, then unlink (best effort: journaling and SSDs may keep old blocks). A
    second name of the same file (a staging copy after its link) is only unlinked: the
    overwrite would destroy the live secret."""
    with contextlib.suppress(FileNotFoundError):
        info = path.stat()
        if info.st_nlink == 1:
            with path.open("r+b") as handle:
                handle.write(b"\0" * info.st_size)
                handle.flush()
                os.fsync(handle.fileno())
        path.unlink()


def _staging_name(name: str) -> str:
    # Host and pid: a collector on another host sharing the directory is never judged by
    # a local pid. "@": no host name or secret name holds one.
    return f".{name}{_STAGING_MARK}{secrets.token_hex(4)}.{os.getpid()}@{socket.gethostname()}"


def _abandoned(staging: Path) -> bool:
    try:
        age = time.time() - staging.stat().st_mtime
    except FileNotFoundError:
        return False  # its process finished with it
    if age > STAGING_MAX_AGE_S:
        return True
    owner, at, host = staging.name.rpartition("@")
    pid = owner.rpartition(".")[2]
    if not at or host != socket.gethostname() or not pid.isdigit():
        return False  # another host's, or of an older naming: only its age tells
    return not _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
