"""Who clicked, without keeping who: client IP from trusted proxies, and the anonymised visitor key.

visitor_key = BLAKE2b-128(key = daily salt, data = client IP + NUL + User-Agent), hex.
daily salt = BLAKE2b-256(key = BLAKE2b-256(secret), data = "YYYY-MM-DD" of the click, UTC).
Keyed BLAKE2b is a MAC (RFC 7693), so without the secret a key cannot be recomputed from a
guessed IP; the salt rotates at midnight UTC, so keys of one visitor on two days are unlinkable.
The raw IP lives only in memory between the request and the click builder (milliseconds) and
is never logged or written anywhere.
"""

import hashlib
import ipaddress
from collections.abc import Iterable
from datetime import date

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[IpNetwork, ...]:
    """ "127.0.0.1, ::1, 10.0.0.0/8" -> networks. Raises ValueError on a malformed entry."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


class TrustedProxies:
    """Which peers may tell us the client's address (X-Forwarded-For / X-Real-IP)."""

    def __init__(self, networks: Iterable[IpNetwork]) -> None:
        self._networks = tuple(networks)
        # Single addresses are matched as strings (the common case: nginx on loopback); ranges
        # need a parse. No client address is ever memoised.
        self._exact = frozenset(str(n.network_address) for n in self._networks if n.num_addresses == 1)
        self._has_ranges = any(n.num_addresses > 1 for n in self._networks)

    def _check(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def peer_is_trusted(self, peer: str) -> bool:
        """Is this TCP peer one of our proxies."""
        return peer in self._exact or (self._has_ranges and self._check(peer))

    def client_ip(self, peer: str | None, forwarded_for: str | None, real_ip: str | None) -> str:
        """The client address: from the headers only when the peer is a trusted proxy.

        X-Forwarded-For is read right to left (each proxy appends what it saw), skipping our
        own trusted proxies; the first other address is the client. Then X-Real-IP, then the peer.
        """
        if peer is None:
            return ""
        if not self.peer_is_trusted(peer):
            return peer
        if forwarded_for:
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            for hop in reversed(hops):
                if not self.peer_is_trusted(hop):
                    return hop if _is_ip(hop) else peer
            if hops:
                return hops[0]
        if real_ip and _is_ip(real_ip.strip()):
            return real_ip.strip()
        return peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


class VisitorKeys:
    """Keyed hash of (client IP, User-Agent) with a salt that rotates every UTC day."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the visitor-key secret must not be empty")
        self._root = hashlib.blake2b(secret, digest_size=32, person=b"redirect-root").digest()
        self._day: date | None = None
        self._keyed = hashlib.blake2b(digest_size=16)

    def salt(self, day: date) -> bytes:
        return hashlib.blake2b(day.isoformat().encode(), key=self._root, digest_size=32).digest()

    def key(self, client_ip: str, user_agent: str, day: date) -> str:
        return self.key_utf8(client_ip.encode(), user_agent.encode(), day)

    def key_utf8(self, client_ip: bytes, user_agent: bytes, day: date) -> str:
        """`key` of text already UTF-8 encoded (the click builder caches each user agent's bytes)."""
        if day != self._day:  # a keyed state per day, copied per click (cheaper than re-keying)
            self._keyed = hashlib.blake2b(key=self.salt(day), digest_size=16)
            self._day = day
        h = self._keyed.copy()
        h.update(client_ip + b"\x00" + user_agent)
        return h.hexdigest()
