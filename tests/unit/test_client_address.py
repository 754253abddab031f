"""The client address a service acts on (rate limits): the peer, or what a trusted proxy said."""

from platformkit.clientip import ClientAddress, parse_networks


def scope(peer: str | None, *forwarded: str) -> dict[str, object]:
    return {"client": (peer, 1234) if peer else None, "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


def test_only_a_trusted_proxy_names_the_client() -> None:
    who = ClientAddress(parse_networks("127.0.0.1, ::1, 10.0.0.0/8"))
    assert who.of(scope("127.0.0.1", "198.51.100.7")) == "198.51.100.7"
    assert who.of(scope("10.1.2.3", "203.0.113.5, 198.51.100.7")) == "198.51.100.7"  # the last hop
    assert who.of(scope("203.0.113.9", "198.51.100.7")) == "203.0.113.9"  # not a proxy: ignored
    assert who.of(scope("127.0.0.1")) == "127.0.0.1"
    assert who.of(scope("127.0.0.1", "not-an-address")) == "127.0.0.1"
    assert who.of(scope("::1", "2001:db8::1")) == "2001:db8::1"
    assert who.of(scope(None, "198.51.100.7")) == ""
