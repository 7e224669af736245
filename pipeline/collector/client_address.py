"""Who sent a request: the connection's peer, or, behind trusted reverse proxies, the
address the outermost of them saw.

A proxy appends the address it got the request from to X-Forwarded-For; whatever stands
left of that was written by whoever sent the request, and proves nothing. So the list is
read from the right: past the entries of trusted proxies, the first address that is not
one is the client. An entry that is not an IP address ends the walk (the address before
it stands). Without trusted proxies (`collector.trusted_proxies`, the default) the peer is
the client, and forwarded and country headers are ignored: anyone could write them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
FORWARDED_FOR = "x-forwarded-for"


@dataclass(frozen=True)
class ClientAddress:
    ip: str
    # The request came through a trusted proxy: the headers it sets (the country) count.
    via_trusted_proxy: bool


class TrustedProxies:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(net.strip(), strict=False) for net in networks)

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Iterable[str]) -> ClientAddress:
        """The client of a request from `peer` with these X-Forwarded-For header values
        (each a comma-separated list, in the order received)."""
        peer_address = parse_ip(peer)
        if peer_address is None or not self.trusts(peer_address):
            return ClientAddress(str(peer_address or peer), via_trusted_proxy=False)
        client = peer_address
        entries = [entry for value in forwarded_for for entry in value.split(",")]
        for entry in reversed(entries):
            address = parse_ip(entry)
            if address is None:
                break
            client = address
            if not self.trusts(address):
                break
        return ClientAddress(str(client), via_trusted_proxy=True)


def parse_ip(text: str) -> IPAddress | None:
    """An address as proxies write it: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
    `[2001:db8::1]:443`; an IPv4-mapped IPv6 address as its IPv4 one. Else None."""
    text = text.strip()
    if text.startswith("["):
        host, closed, _ = text[1:].partition("]")
        if not closed:
            return None
    elif text.count(":") == 1:
        host = text.partition(":")[0]  # IPv4 with a port
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
