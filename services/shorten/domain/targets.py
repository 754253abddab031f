"""Which link targets are refused whatever their shape: the shortener itself, and an operator's
deny-list. Pure: hosts are compared as `validate_url` normalised them; names are never resolved.

- **Self reference** (`url_self_reference`): the target's host is one of the service's own public
  hosts (the host of SHORTEN_PUBLIC_BASE_URL and SHORTEN_EXTRA_DOMAINS), on any port: a link to
  ourselves is a redirect loop whose every hop counts a click. Exact host match (a subdomain of
  ours may be someone else's site).
- **Deny-list** (`url_host_denied`, SHORTEN_DENIED_TARGETS): a host name refuses itself and every
  subdomain; a CIDR range (or one address) refuses IP-literal targets inside it (IPv4-mapped IPv6
  addresses are checked as IPv4).
"""

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from shorten.domain.errors import InvalidInput

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _host_of(entry: str) -> str:
    """A configured entry (a bare host or a URL) -> its normalised host; ValueError if none."""
    entry = entry.strip()
    host = urlsplit(entry if "//" in entry else f"//{entry}").hostname
    if not host:
        raise ValueError(f"not a host name: {entry!r}")
    ip = _ip(host)
    return str(ip) if ip is not None else host.encode("idna").decode("ascii").lower().removesuffix(".")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass(frozen=True)
class TargetRules:
    own_hosts: frozenset[str] = frozenset()
    denied_hosts: frozenset[str] = frozenset()
    denied_networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_settings(cls, *, public_base_url: str, extra_domains: str = "", denied_targets: str = "") -> "TargetRules":
        """Parse the settings' strings (comma-separated); raises ValueError on a malformed entry."""
        own = {_host_of(public_base_url), *(_host_of(d) for d in _split(extra_domains))}
        hosts, networks = set(), []
        for entry in _split(denied_targets):
            if "/" in entry or _ip(entry.strip("[]")) is not None:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            else:
                hosts.add(_host_of(entry))
        return cls(frozenset(own), frozenset(hosts), tuple(networks))

    def check(self, url: str, *, field: str = "url") -> None:
        """Raise InvalidInput when `url` (already normalised by validate_url) is refused."""
        host = urlsplit(url).hostname or ""
        ip = _ip(host)
        if (str(ip) if ip is not None else host) in self.own_hosts:
            raise InvalidInput(
                "url points at this shortener itself (a redirect loop)", code="url_self_reference", field=field
            )
        if ip is not None:
            if any(ip.version == net.version and ip in net for net in self.denied_networks):
                raise InvalidInput("url host is in a denied address range", code="url_host_denied", field=field)
        elif any(host == denied or host.endswith("." + denied) for denied in self.denied_hosts):
            raise InvalidInput("url host is denied by this service", code="url_host_denied", field=field)


NO_RULES = TargetRules()
