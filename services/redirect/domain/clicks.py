"""From what the request path captured (a small tuple) to a LinkClicked event.

The request path only appends `RawClick(code, timestamp, headers, peer)`; everything here
(header lookup, client IP, visitor key, UA classification, event id) runs in the click builder,
off the request path.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import uuid_utils
from contracts.clicks import UNKNOWN_COUNTRY, Device, LinkClicked

from redirect.domain.visitor import TrustedProxies, VisitorKeys

MAX_USER_AGENT = 512
MAX_REFERRER = 2048

Headers = Sequence[tuple[bytes, bytes]]


class RawClick(NamedTuple):
    code: str
    timestamp: float  # epoch seconds when the redirect was served
    headers: Headers  # the ASGI scope's raw headers (names lower case)
    peer: str | None  # the TCP peer's address


def new_event_id() -> str:
    """UUIDv7, assigned once when the event is built; retries resend the same encoded bytes."""
    return str(uuid_utils.uuid7())


def _country(value: str | None) -> str:
    if value is None:
        return UNKNOWN_COUNTRY
    value = value.strip().upper()
    return value if len(value) == 2 and value.isascii() and value.isalpha() and value != "XX" else UNKNOWN_COUNTRY


class ClickFactory:
    """Builds LinkClicked events; holds the classifier cache, the visitor-key salt and the trust rules."""

    def __init__(
        self,
        *,
        visitor_keys: VisitorKeys,
        proxies: TrustedProxies,
        classify: Callable[[str], tuple[Device, bool]],
        country_header: str = "",
        event_ids: Callable[[], str] = new_event_id,
    ) -> None:
        self._keys = visitor_keys
        self._proxies = proxies
        self._classify = classify
        self._country_header = country_header.strip().lower().encode() or None
        self._event_ids = event_ids

    def build(self, raw: RawClick) -> LinkClicked:
        ua = referrer = forwarded = real_ip = country = None
        wanted = self._country_header
        for name, value in raw.headers:
            if name == b"user-agent":
                ua = value.decode("latin-1")
            elif name == b"referer":
                referrer = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                forwarded = value.decode("latin-1") if forwarded is None else f"{forwarded},{value.decode('latin-1')}"
            elif name == b"x-real-ip":
                real_ip = value.decode("latin-1")
            elif name == wanted:
                country = value.decode("latin-1")
        ua = (ua or "")[:MAX_USER_AGENT]
        trusted_peer = raw.peer is not None and self._proxies.peer_is_trusted(raw.peer)
        client = self._proxies.client_ip(raw.peer, forwarded, real_ip)
        occurred = datetime.fromtimestamp(raw.timestamp, UTC)
        device, is_bot = self._classify(ua)
        return LinkClicked(
            event_id=self._event_ids(),
            occurred_at=occurred,
            code=raw.code,
            referrer=referrer[:MAX_REFERRER] if referrer else None,
            user_agent=ua,
            visitor_key=self._keys.key(client, ua, occurred.date()),
            device=device,
            is_bot=is_bot,
            country=_country(country) if trusted_peer else UNKNOWN_COUNTRY,
        )
