"""Who the client is: the TCP peer, or, when the peer is one of our proxies, the address the
proxy put in X-Forwarded-For.

The stack's nginx replaces X-Forwarded-For with the address that connected to it (or, behind
TRUSTED_PROXIES, the one its realip module believed), so the last entry is the client as the
edge decided it. A peer that is not a trusted proxy cannot choose its address this way.
"""

import ipaddress
from collections.abc import Iterable, MutableMapping
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> tuple[IpNetwork, ...]:
    """ "127.0.0.1, 10.0.0.0/8" -> networks; a malformed entry raises ValueError."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in value.split(",") if p.strip())


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[IpNetwork]) -> None:
        self._networks = tuple(trusted_proxies)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def of(self, scope: MutableMapping[str, Any]) -> str:
        """The client's address for an ASGI HTTP scope ("" when the server gave no peer)."""
        client = scope.get("client")
        peer = str(client[0]) if client else ""
        if not peer or not self._trusted(peer):
            return peer
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                try:
                    return str(ipaddress.ip_address(last))
                except ValueError:
                    return peer
        return peer
