"""The country of a client address, from the offline IP-to-country database of `iptocc`.

iptocc (MIT OR Apache-2.0) embeds the five Regional Internet Registries' delegation data in its
wheel (~0.6 MB, refreshed nightly upstream, a new release per refresh): no file to download or
mount, no licence key, ~100 ns per lookup in Rust. Countries are those the registries assigned
the block to (agrees with commercial databases for ~95 % of IPv4 addresses); private,
loopback, documentation and unassigned addresses have none. Compared in docs/geoip.md.
"""

from iptocc import country_code


def country_of(address: str) -> str | None:
    """ISO 3166-1 alpha-2 code of the address's registry country; None when it has none (or the
    text is not an address)."""
    return country_code(address)
