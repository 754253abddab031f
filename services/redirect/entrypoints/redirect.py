"""GET/HEAD /{code}, the hot path: L1 -> Redis -> response -> enqueue click. Nothing else.

A plain ASGI endpoint, reached without Starlette's routing and middleware (`HotPath` in app.py
hands it the code): no Request object; metrics are integer increments, response headers were
built when the link version was cached, the click is a tuple appended to a deque. HEAD answers
like GET but is a safe method (RFC 9110 9.2.1): it neither counts toward max_clicks nor emits a
click event, so for a link with max_clicks it answers without `Location` (a HEAD would otherwise
reveal the target without using up a click).
"""

import json
import logging
from time import monotonic, perf_counter, time
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer

from redirect.domain.click_factory import TRACE_HEADER_NAMES
from redirect.domain.links import cache_control, is_valid_code, redirect_headers
from redirect.ports import StoreUnavailable
from redirect.service_layer.redirects import Core, within_limit

log = logging.getLogger(__name__)

Scope = dict[str, Any]


Headers = tuple[tuple[bytes, bytes], ...]


def _error(status: int, code: str, message: str, *extra: tuple[bytes, bytes]) -> tuple[int, bytes, Headers]:
    body = json.dumps({"error": {"code": code, "message": message, "field": "code"}}).encode()
    headers = (
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
        (b"cache-control", b"no-store"),
        *extra,
    )
    return status, body, headers


ERRORS = {
    "not_found": _error(404, "not_found", "no link with this code"),
    "link_deleted": _error(410, "link_deleted", "this link was deleted"),
    "link_expired": _error(410, "link_expired", "this link has expired"),
    "link_click_limit_reached": _error(410, "link_click_limit_reached", "this link reached its click limit"),
    "unavailable": _error(503, "unavailable", "links store unavailable, retry shortly", (b"retry-after", b"1")),
}
EXPIRED = _error(503, "request_expired", "the proxy gave up on this request; retry", (b"retry-after", b"0"))
REQUEST_START = b"x-request-start"
# Not through Starlette's error middleware: a bug here answers the same JSON 500 as elsewhere.
INTERNAL_ERROR = _error(500, "internal_error", "internal error")
EMPTY = {"type": "http.response.body", "body": b""}


class RedirectEndpoint:
    def __init__(self, core: Core | None = None) -> None:
        self.core = core  # bound by the app's lifespan when not given here

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        """As a Starlette route's endpoint (path_params)."""
        await self.serve(scope["path_params"]["code"], scope, send)

    async def serve(self, code: str, scope: Scope, send: Any) -> None:
        started = perf_counter()
        core = self.core
        assert core is not None, "lifespan did not bind the runtime"
        if core.tracer is not None and "traced" not in scope:
            await _traced(self, core.tracer, code, scope, send)
            return
        now = time()
        if core.expire_after and now - _request_start(scope["headers"], now) > core.expire_after:
            # nginx has re-sent this request to another replica (or is about to give up on it):
            # answering it here would count the visit twice.
            core.stats.expired_requests += 1
            status, body, headers = EXPIRED
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body} if scope["method"] == "GET" else EMPTY)
            core.stats.finished(status, perf_counter() - started)
            return
        try:
            status, body, headers = ERRORS["not_found"]
            if is_valid_code(code):
                link = core.l1.get(code, monotonic())
                if link is None:
                    link = await core.lookup.fetch(code)
                else:
                    core.stats.l1_hits += 1
                status = link.status_at(now)
                if status < 400 and link.max_clicks is not None:
                    status = await within_limit(core, code, link, scope["method"])
                if status < 400:
                    body = b""
                    headers = link.headers or redirect_headers(
                        link, cache_control(link, now, permanent_max_age=core.permanent_max_age)
                    )
                    if link.max_clicks is not None and scope["method"] == "HEAD":
                        headers = tuple(h for h in headers if h[0] != b"location")
                elif status != 404:
                    status, body, headers = ERRORS[link.gone_reason(now)]
        except StoreUnavailable:
            core.stats.redis_errors += 1
            status, body, headers = ERRORS["unavailable"]
        except Exception:  # a bug: the JSON 500 Starlette's error middleware would have sent
            log.exception("redirect of %r failed", code)
            status, body, headers = INTERNAL_ERROR
        get = scope["method"] == "GET"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body} if body and get else EMPTY)
        if status < 400 and get:  # a redirect served: a click (HEAD is not one)
            client = scope.get("client")
            core.clicks.add(code, now, scope["headers"], client[0] if client else None)
        core.stats.finished(status, perf_counter() - started)


def _request_start(headers: Any, now: float) -> float:
    """The proxy's clock when it built the upstream request ("t=<epoch s>"), else `now`.

    nginx sets the header before the ones it passes on, so the loop ends within a few headers."""
    for name, value in headers:
        if name == REQUEST_START:
            if value[:2] != b"t=":
                return now
            try:
                return float(value[2:])
            except ValueError:
                return now
    return now


async def _traced(endpoint: RedirectEndpoint, tracer: Tracer, code: str, scope: Scope, send: Any) -> None:
    """The same handling inside a server span; the click carries the span's context (its
    traceparent replaces any client-sent one in the captured headers) into the clicks topic."""
    request_headers = [(k, v) for k, v in scope["headers"] if k not in TRACE_HEADER_NAMES]
    parent = propagate.extract({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
    with tracer.start_as_current_span(
        f"{scope['method']} /{{code}}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": scope["method"],
            "http.route": "/{code}",
            "link.code": code,
        },
    ) as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        own_context = [(k.encode(), v.encode()) for k, v in carrier.items()]
        traced_scope = dict(scope, traced=True, headers=[*request_headers, *own_context])

        async def send_recording(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                span.set_attribute("http.response.status_code", message["status"])
            await send(message)

        await endpoint.serve(code, traced_scope, send_recording)
