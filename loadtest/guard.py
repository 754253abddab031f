"""The loopback guard: load is only ever generated against this machine.

Accepted hosts: `localhost`, IPv4 127.0.0.0/8 and IPv6 ::1, written literally. Nothing is
resolved through DNS (a name that resolves to loopback today may not tomorrow), so any other
name, numeric shorthand (`127.1`, `2130706433`) or IPv4-mapped address is refused. A caller
may name addresses of its own on this machine besides (the cluster's namespaces, `local_hosts`).
"""

import ipaddress
from collections.abc import Collection
from urllib.parse import urlsplit


class NotLoopback(ValueError):
    """The target URL does not point at a loopback address."""


def require_loopback(url: str, *, local_hosts: Collection[str] = ()) -> str:
    """The base URL (scheme://host[:port], no trailing slash) if it is on loopback, or is one of
    `local_hosts` (addresses the caller made on this machine: the cluster's hosts in their own
    network namespaces, on a bridge that routes nowhere else); else raise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise NotLoopback(f"load test host must be an http(s) URL, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise NotLoopback(f"load test host must not carry credentials: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise NotLoopback(f"load test host must be a base URL without path or query: {url!r}")
    host = parts.hostname
    if not host or not (is_loopback_host(host) or host in local_hosts):
        raise NotLoopback(f"refusing to generate load against {url!r}: only localhost, 127.0.0.0/8 and ::1 are allowed")
    try:
        port = parts.port
    except ValueError as exc:
        raise NotLoopback(f"invalid port in {url!r}") from exc
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}" + (f":{port}" if port is not None else "")


def is_loopback_host(host: str) -> bool:
    """True for `localhost`, a dotted-quad in 127.0.0.0/8 or the IPv6 loopback ::1."""
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        # ip_address() accepts only full dotted quads, so `127.1` never gets here.
        return address in ipaddress.IPv4Network("127.0.0.0/8")
    return address == ipaddress.IPv6Address("::1")
