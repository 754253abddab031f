"""What serving a redirect needs (`Core`, built by bootstrap, read by the hot path in
entrypoints/redirect.py) and the one use case of the hot path that writes: counting a click
against a link's max_clicks."""

from dataclasses import dataclass

from opentelemetry.trace import Tracer

from redirect.domain.l1 import L1Cache
from redirect.domain.links import Link
from redirect.metrics import RedirectStats
from redirect.service_layer.click_buffer import ClickBuffer
from redirect.service_layer.lookup import Lookup


@dataclass(frozen=True, kw_only=True)
class Core:
    """What the hot path needs, built by bootstrap."""

    l1: L1Cache[Link]
    lookup: Lookup
    clicks: ClickBuffer
    stats: RedirectStats
    permanent_max_age: int
    # Seconds after the proxy's X-Request-Start past which a request is refused without a click
    # (settings.expire_requests_after); 0: no check.
    expire_after: float = 0.0
    # Set only when tracing is on; off, the hot path pays one attribute check for it.
    tracer: Tracer | None = None


async def within_limit(core: Core, code: str, link: Link, method: str) -> int:
    """Links with max_clicks: GET counts the click atomically in Redis; HEAD only checks."""
    assert link.max_clicks is not None
    if method == "HEAD":
        ok = await core.lookup.store.clicks_used(code) < link.max_clicks
    else:
        ok = await core.lookup.store.try_click(code, link.max_clicks)
    return link.redirect_type if ok else 410
