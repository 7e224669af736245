"""The client address rule: the peer, or the right-most untrusted X-Forwarded-For entry
behind trusted proxies."""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.collector.client_address import ClientAddress, TrustedProxies, parse_ip

PROXIES = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:443", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("not-an-ip", None),
        ("", None),
        ("999.1.1.1", None),
        ("[2001:db8::1", None),
        ("192.0.2.1' OR '1'='1", None),
        ("unknown", None),  # what some proxies write for an unknown peer
    ],
)
def test_addresses_as_proxies_write_them(text: str, address: str | None) -> None:
    parsed = parse_ip(text)
    assert (None if parsed is None else str(parsed)) == address
    assert parsed is None or isinstance(parsed, ipaddress.IPv4Address | ipaddress.IPv6Address)


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    nobody = TrustedProxies([])
    assert nobody.client("203.0.113.9", ["198.51.100.1"]) == ClientAddress("203.0.113.9", False)
    assert nobody.client("127.0.0.1", ["198.51.100.1"]) == ClientAddress("127.0.0.1", False)


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert PROXIES.client("203.0.113.9", ["198.51.100.1"]) == ClientAddress("203.0.113.9", False)


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (["198.51.100.2"], "198.51.100.2"),
        # The left-most entries are the client's own writing: the right-most untrusted wins.
        (["192.0.2.1, 198.51.100.2"], "198.51.100.2"),
        (["192.0.2.1, 198.51.100.2, 10.1.2.3"], "198.51.100.2"),
        (["192.0.2.1", "198.51.100.2, 10.1.2.3"], "198.51.100.2"),  # two header lines
        (["198.51.100.2:5555, 10.1.2.3"], "198.51.100.2"),
        (["[2001:db8::7]:443, [2001:db8:ffff::1]"], "2001:db8::7"),
        # Garbage ends the walk: the address before it stands (here the peer's).
        (["not-an-ip"], "127.0.0.1"),
        (["198.51.100.2, garbage, 10.1.2.3"], "10.1.2.3"),
        (["garbage, 198.51.100.2"], "198.51.100.2"),
        ([], "127.0.0.1"),
        ([""], "127.0.0.1"),
        # Every entry a proxy: the left-most is the nearest to the client there is.
        (["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
    ],
)
def test_behind_trusted_proxies_the_right_most_untrusted_entry(
    forwarded: list[str], client: str
) -> None:
    assert PROXIES.client("127.0.0.1", forwarded) == ClientAddress(client, True)
