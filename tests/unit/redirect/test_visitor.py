"""Visitor key (keyed BLAKE2b, daily salt) and the client address from trusted proxies only."""

import hashlib
from datetime import date

import pytest
from redirect.domain.visitor import TrustedProxies, VisitorKeys, parse_networks

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 27)
UA = "Mozilla/5.0"


def test_same_visitor_same_day_same_key_as_documented() -> None:
    """BLAKE2b-128(key=daily salt, ip NUL ua); salt = BLAKE2b-256(key=BLAKE2b-256(secret), day)."""
    keys = VisitorKeys(b"secret")
    key = keys.key("203.0.113.7", UA, DAY)
    assert key == keys.key("203.0.113.7", UA, DAY)
    root = hashlib.blake2b(b"secret", digest_size=32, person=b"redirect-root").digest()
    salt = hashlib.blake2b(b"2026-11-27", key=root, digest_size=32).digest()
    assert key == hashlib.blake2b(b"203.0.113.7\x00" + UA.encode(), key=salt, digest_size=16).hexdigest()


def test_the_key_changes_with_ip_user_agent_day_and_secret() -> None:
    keys = VisitorKeys(b"secret")
    base = keys.key("203.0.113.7", UA, DAY)
    others = {
        keys.key("203.0.113.8", UA, DAY),
        keys.key("203.0.113.7", "curl/8", DAY),
        keys.key("203.0.113.7", UA, date(2026, 11, 28)),  # salt rotates daily
        VisitorKeys(b"other secret").key("203.0.113.7", UA, DAY),
    }
    assert base not in others and len(others) == 4


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        VisitorKeys(b"")


PROXIES = TrustedProxies(parse_networks("127.0.0.1, ::1, 10.0.0.0/8"))


@pytest.mark.parametrize(
    ("peer", "xff", "real_ip", "client"),
    [
        ("127.0.0.1", "203.0.113.7", "127.0.0.1", "203.0.113.7"),  # nginx on loopback
        ("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3", None, "203.0.113.7"),  # right-most untrusted hop
        ("127.0.0.1", "10.0.0.1, 127.0.0.1", None, "10.0.0.1"),  # all hops trusted: the first
        ("127.0.0.1", None, "203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "not-an-ip", "203.0.113.9", "127.0.0.1"),  # garbage is not believed
        ("::1", "2001:db8::1", None, "2001:db8::1"),
        ("10.9.9.9", "203.0.113.7", None, "203.0.113.7"),  # a trusted range
        ("198.51.100.23", "203.0.113.7", "203.0.113.8", "198.51.100.23"),  # untrusted peer: headers ignored
        (None, "203.0.113.7", None, ""),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, real_ip: str | None, client: str) -> None:
    assert PROXIES.client_ip(peer, xff, real_ip) == client


def test_malformed_trusted_proxies_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_networks("127.0.0.1, nonsense")
