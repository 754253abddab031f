"""From what the request path captured (a small tuple) to a `Click` of the `clicks` contract.

The request path only appends `RawClick(code, timestamp, headers, peer)`; everything here
(header lookup, client IP, visitor key, UA classification, country, event id) runs in the click
builder, off the request path. The client IP is used for the visitor key and the country, then
dropped: it is never stored or published.
"""

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache

from contracts.clicks import UNKNOWN_COUNTRY, Click, Device

from redirect.domain.batches import TraceHeaders
from redirect.domain.ids import new_event_ids
from redirect.domain.visitor import TrustedProxies, VisitorKeys

MAX_USER_AGENT = 512
MAX_REFERRER = 2048

Headers = Sequence[tuple[bytes, bytes]]


# What the request path captures: (code, timestamp (epoch s), the ASGI scope's raw headers
# (names lower case), the TCP peer's address). A plain tuple: the cheapest thing to build there.
RawClick = tuple[str, float, Headers, str | None]


def _country(value: str | None) -> str:
    if value is None:
        return UNKNOWN_COUNTRY
    value = value.strip().upper()
    return value if len(value) == 2 and value.isascii() and value.isalpha() and value != "XX" else UNKNOWN_COUNTRY


TRACE_HEADER_NAMES = (b"traceparent", b"tracestate")


def trace_headers(headers: Headers) -> TraceHeaders:
    """The W3C trace context the endpoint put in the captured headers, as Kafka headers.

    Only called when tracing is on (the endpoint then replaces any client-sent context with its
    own span's), so the click continues the request's trace in the aggregator: the batch record
    carries one traceparent (and tracestate) header per click that had one."""
    return tuple((name.decode(), value) for name, value in headers if name in TRACE_HEADER_NAMES)


class ClickFactory:
    """Builds `Click`s; holds the classifier cache, the visitor-key salt and the trust rules."""

    def __init__(
        self,
        *,
        visitor_keys: VisitorKeys,
        proxies: TrustedProxies,
        classify: Callable[[str], tuple[Device, bool]],
        country_header: str = "",
        country_of: Callable[[str], str | None] = lambda _address: None,
        event_ids: Callable[[int], list[uuid.UUID]] = new_event_ids,
        ua_cache_size: int = 10_000,
    ) -> None:
        self._keys = visitor_keys
        self._proxies = proxies
        self._country_header = country_header.strip().lower().encode() or None
        # The country of a client address (an offline IP database, adapters/geoip.py); a trusted
        # proxy's country header, when configured and sent, wins over it.
        self._country_of = country_of
        # UUIDv7s for a chunk of clicks at once (domain/ids.py); each click gets its id once, here.
        self.event_ids = event_ids

        @lru_cache(maxsize=ua_cache_size)
        def user_agent(raw: bytes) -> tuple[str, bytes, Device, bool]:
            ua = raw.decode("latin-1")[:MAX_USER_AGENT]
            return (ua, ua.encode(), *classify(ua))  # the UTF-8 bytes: for the visitor key

        self._user_agent = user_agent

    def build(self, raw: RawClick, event_id: uuid.UUID) -> Click:
        code, timestamp, headers, peer = raw
        ua_raw = referrer = forwarded = real_ip = country = None
        wanted = self._country_header
        for name, value in headers:
            if name == b"user-agent":
                ua_raw = value
            elif name == b"referer":
                referrer = value
            elif name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b"," + value
            elif name == b"x-real-ip":
                real_ip = value
            elif name == wanted:
                country = value
        ua, ua_utf8, device, is_bot = self._user_agent(ua_raw or b"")
        trusted = peer is not None and self._proxies.peer_is_trusted(peer)
        if trusted and (forwarded is not None or real_ip is not None):
            client = self._proxies.client_ip(
                peer, forwarded.decode("latin-1") if forwarded else None, real_ip.decode("latin-1") if real_ip else None
            )
        else:
            client = peer or ""
        occurred = datetime.fromtimestamp(timestamp, UTC)
        if trusted and country:
            country_code = _country(country.decode("latin-1"))
        else:
            country_code = _country(self._country_of(client)) if client else UNKNOWN_COUNTRY
        return Click(
            event_id=event_id,
            occurred_at=occurred,
            code=code,
            referrer=referrer.decode("latin-1")[:MAX_REFERRER] if referrer else None,
            user_agent=ua,
            visitor_key=self._keys.key_utf8(client.encode(), ua_utf8, occurred.date()),
            device=device,
            is_bot=is_bot,
            country=country_code,
        )
