from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.privacy.hashing import keyed_hash
from pipeline.privacy.ids import RecentVisitors, SiteKeys
from pipeline.privacy.salts import SaltStore
from pipeline.privacy.secrets import read_or_create_secret

MINUTE = 60 * 1_000_000


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_salt_rotates_daily_and_old_salts_are_destroyed(tmp_path: Path) -> None:
    store = SaltStore(tmp_path, "UTC", keep_previous=timedelta(minutes=30))
    monday, _ = store.salts(at("2026-11-16T12:00:00"))
    tuesday, previous = store.salts(at("2026-11-17T00:10:00"))
    assert tuesday != monday
    assert previous == monday  # kept for sessions that cross midnight
    assert (tmp_path / "salt-2026-11-16").exists()
    _, previous = store.salts(at("2026-11-17T00:31:00"))
    assert previous is None
    assert not (tmp_path / "salt-2026-11-16").exists()  # destroyed once not needed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salt-2026-11-17"]


def test_expired_salts_are_destroyed_without_a_request(tmp_path: Path) -> None:
    # The collector's timer: an idle collector keeps no salt past its time.
    store = SaltStore(tmp_path, "UTC", keep_previous=timedelta(minutes=30))
    monday, _ = store.salts(at("2026-11-16T12:00:00"))
    store.salts(at("2026-11-17T00:10:00"))
    (tmp_path / "salt-2026-11-13").write_bytes(b"x" * 32)  # left by an older run
    store.destroy_expired_at(at("2026-11-17T00:20:00"))  # within the window: only the old one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salt-2026-11-16", "salt-2026-11-17"]
    store.destroy_expired_at(at("2026-11-17T00:31:00"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["salt-2026-11-17"]
    assert store.salts(at("2026-11-17T00:32:00"))[1] is None  # gone from memory too
    assert monday not in store._cache.values()
    SaltStore(tmp_path / "none", "UTC", timedelta(minutes=30)).destroy_expired_at(
        at("2026-11-17T00:00:00")
    )
    assert not (tmp_path / "none").exists()  # creates nothing


def test_salt_day_follows_the_property_time_zone(tmp_path: Path) -> None:
    store = SaltStore(tmp_path, "America/New_York", keep_previous=timedelta(minutes=30))
    store.salts(at("2026-11-17T03:00:00"))  # 22:00 on the 16th in New York
    assert [p.name for p in tmp_path.iterdir()] == ["salt-2026-11-16"]


def test_instances_share_one_salt(tmp_path: Path) -> None:
    first = SaltStore(tmp_path, "UTC", timedelta(minutes=30)).salts(at("2026-11-16T08:00:00"))
    second = SaltStore(tmp_path, "UTC", timedelta(minutes=30)).salts(at("2026-11-16T09:00:00"))
    assert first[0] == second[0]


def _create(path: str) -> bytes:
    return read_or_create_secret(Path(path))


def test_concurrent_creation_yields_one_secret(tmp_path: Path) -> None:
    target = str(tmp_path / "secret")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        secrets = pool.map(_create, [target] * 32)
    assert len(set(secrets)) == 1
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]  # no staging files left


def test_cookie_free_ids_differ_across_days_but_not_within(tmp_path: Path) -> None:
    store = SaltStore(tmp_path, "UTC", keep_previous=timedelta(minutes=30))
    recent = RecentVisitors(timeout_micros=30 * MINUTE)
    ua, ip = "Mozilla/5.0 Test", "198.51.100.1"

    def visitor(when: str) -> str:
        now = at(when)
        return recent.cookie_free_id(
            store.salts(now), "shop.example", ip, ua, int(now.timestamp() * 1e6)
        )

    morning = visitor("2026-11-16T09:00:00")
    assert visitor("2026-11-16T18:00:00") == morning
    assert visitor("2026-11-17T09:00:00") != morning


def test_a_session_crossing_midnight_keeps_its_visitor(tmp_path: Path) -> None:
    store = SaltStore(tmp_path, "UTC", keep_previous=timedelta(minutes=30))
    recent = RecentVisitors(timeout_micros=30 * MINUTE)

    def visitor(when: str, ip: str) -> str:
        now = at(when)
        return recent.cookie_free_id(store.salts(now), "s", ip, "ua", int(now.timestamp() * 1e6))

    late = visitor("2026-11-16T23:55:00", "198.51.100.1")
    assert visitor("2026-11-17T00:05:00", "198.51.100.1") == late  # still in session
    earlier = visitor("2026-11-16T22:00:00", "198.51.100.2")
    assert visitor("2026-11-17T00:05:00", "198.51.100.2") != earlier  # session had ended


def test_stable_ids_are_keyed_per_site(tmp_path: Path) -> None:
    keys = SiteKeys(tmp_path / "site_key")
    one = keys.stable_id("a.example", "client", "123.456")
    assert one == SiteKeys(tmp_path / "site_key").stable_id("a.example", "client", "123.456")
    assert one != keys.stable_id("b.example", "client", "123.456")
    assert one != keys.stable_id("a.example", "user", "123.456")
    assert len(one) == 32 and "123" not in one
    assert keyed_hash(b"k", "a", "b") != keyed_hash(b"k", "a\0b")
