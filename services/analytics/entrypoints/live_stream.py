"""GET /api/v1/links/{code}/live: a link's clicks as they are counted, as Server-Sent Events.

The request is checked like `/stats` (rate limits, key, access: 401/403/404/422/429 as JSON), and
past the process's stream limit it is a JSON 503; only then does the stream open:

    event: ready    data: {"code", "lifetime": {...}, "heartbeat_s"}   (once, first)
    event: clicks   data: {"code", "clicks", "bot_clicks", "first_at", "last_at"}   (per flush)
    : heartbeat                                                          (every heartbeat_s)
    event: end      data: {"reason": "expired" | "closing"}              (the stream's time is up,
                                                                          or the process stops)

sse-starlette writes the events and the heartbeats and notices a client that went away (its
disconnect cancels the stream); `LiveResponse` makes sure the subscription ends with the
response, whichever way it ends (a HEAD, a failed send, a cancelled task), so nothing stays in
the hub. nginx passes the stream unbuffered (infra/templates/nginx.conf, location .../live).
"""

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from analytics.domain.model import LiveReadyBody, render_lifetime, render_live_clicks
from analytics.service_layer.live import LiveStream

_encode = msgspec.json.encode


async def _events(stream: LiveStream, *, heartbeat_s: float, clock: Callable[[], float]) -> AsyncIterator[Any]:
    sub = stream.subscription
    with sub:
        ready = LiveReadyBody(code=sub.code, lifetime=render_lifetime(stream.lifetime), heartbeat_s=heartbeat_s)
        yield ServerSentEvent(_encode(ready).decode(), event="ready")
        while not sub.closed:
            remaining = stream.ends_at - clock()
            if remaining <= 0:
                break
            counts = await sub.next(remaining)
            if counts is not None:
                body = render_live_clicks(sub.code, counts.clicks, counts.bot_clicks, counts.first_at, counts.last_at)
                yield ServerSentEvent(_encode(body).decode(), event="clicks")
        reason = "closing" if sub.closed else "expired"
        yield ServerSentEvent(_encode({"reason": reason}).decode(), event="end")


class LiveResponse(EventSourceResponse):
    def __init__(self, stream: LiveStream, *, heartbeat_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            _events(stream, heartbeat_s=heartbeat_s, clock=clock),
            ping=heartbeat_s,
            ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
            # A client that stops reading is dropped after this long, not held forever.
            send_timeout=max(10.0, 2 * heartbeat_s),
            headers={"Cache-Control": "no-store"},
        )
        self._subscription = stream.subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._subscription.close()
