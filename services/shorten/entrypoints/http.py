"""REST handlers under /api/v1: parse -> command -> use case -> JSON. Nothing else.

Order of checks on writes: 429 (failed authentications of the address) -> 401 (key) -> 403
(scope) -> 429 (rate) -> 415 (type) -> 413 (size) -> 400 (JSON) -> 422 (rules) -> 404/409/410
(state). A link of another workspace is 404 exactly like a code that does not exist.
"""

from datetime import datetime
from typing import Any

import msgspec
from contracts.links import CODE_RE
from platformkit.apikeys import Principal
from platformkit.errors import ApiError
from platformkit.failures import DomainError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shorten.bootstrap import Runtime
from shorten.domain.bulk import MalformedCsv, TooManyRows
from shorten.domain.commands import parse_changes, parse_create
from shorten.domain.errors import (
    AliasTaken,
    CodeSpaceExhausted,
    InvalidInput,
    LinkGone,
    LinkNotFound,
    StoreUnavailable,
)
from shorten.domain.listing import parse_list_query
from shorten.domain.model import CreateLink
from shorten.domain.targets import TargetRules
from shorten.entrypoints.body import read_json
from shorten.entrypoints.representation import CreateLinkRequest, LinkPage, UpdateLinkRequest, check_shape, present

# The one table from domain failure to HTTP status (platformkit.errors.install_error_handlers).
STATUS: dict[type[DomainError], int] = {
    InvalidInput: 422,
    AliasTaken: 409,
    LinkNotFound: 404,
    LinkGone: 410,
    CodeSpaceExhausted: 503,
    StoreUnavailable: 503,
    TooManyRows: 413,
    MalformedCsv: 400,
}


class LinkResponse(JSONResponse):
    """JSON encoded by msgspec (the request bodies are decoded by it too): a few times cheaper
    per response than the standard library's encoder, same compact output."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


async def _authenticate(request: Request, runtime: Runtime) -> Principal:
    """The caller's key; 401 for a missing or wrong key, 429 once its address failed too often."""
    address = runtime.client_address.of(request.scope)
    runtime.failed_auth.check(address)
    try:
        return await runtime.keys.authenticate(request.headers.get("authorization"))
    except ApiError as refused:
        raise (await runtime.failed_auth.failed(address) or refused) from None


async def _reader(request: Request, runtime: Runtime) -> Principal:
    """A key that may read its workspace's links (reads are not counted as writes)."""
    principal = await _authenticate(request, runtime)
    principal.require("links:read")
    return principal


async def _writer(request: Request, runtime: Runtime) -> Principal:
    """A key that may write links, within its rate limit (per key id)."""
    try:
        principal = await _authenticate(request, runtime)
        principal.require("links:write")
        await charge(runtime, principal, writes=1)
        return principal
    except ApiError:
        # Refused before its body was read: consume it (bounded) first, or the server may close
        # the connection while the client is still sending, and the client sees a reset, not 401.
        await _drain(request, limit=runtime.max_body_bytes)
        raise


async def charge(runtime: Runtime, principal: Principal, *, writes: int) -> None:
    """Count `writes` against the key's rate limit (all or none); 429 when they do not fit."""
    verdict = await runtime.limiter.hit(principal.key_id, cost=writes)
    if not verdict.allowed:
        raise ApiError(
            f"rate limit exceeded for this API key ({writes} writes asked)"
            if writes > 1
            else "rate limit exceeded for this API key",
            status=429,
            code="rate_limited",
            headers={"Retry-After": str(verdict.retry_after)},
        )


async def _drain(request: Request, *, limit: int) -> None:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            break


def _path_code(request: Request) -> str:
    code: str = request.path_params["code"]
    if not CODE_RE.fullmatch(code):  # cannot exist: skip the database
        raise LinkNotFound(f"no link {code[:80]!r}", field="code")
    return code


def create_command(payload: object, *, now: datetime, targets: TargetRules, workspace: str) -> CreateLink:
    """A create's body -> its command: its shape (types), then the domain's rules. The single
    create and every row of a bulk import go through here: one set of rules, one set of codes."""
    check_shape(payload, CreateLinkRequest)
    return parse_create(payload, now=now, targets=targets, workspace=workspace)


async def create_link(request: Request) -> Response:
    runtime = _runtime(request)
    principal = await _writer(request, runtime)
    payload = await read_json(request, max_bytes=runtime.max_body_bytes)
    command = create_command(payload, now=runtime.links.now(), targets=runtime.targets, workspace=principal.workspace)
    link = await runtime.links.create(command)
    return LinkResponse(
        present(link, runtime.public_base_url),
        status_code=201,
        headers={"Location": f"/api/v1/links/{link.code}"},
    )


async def list_links(request: Request) -> Response:
    runtime = _runtime(request)
    principal = await _reader(request, runtime)
    query = parse_list_query(request.query_params, workspace=principal.workspace)
    links, next_cursor = await runtime.links.page(query)
    page = LinkPage(links=[present(link, runtime.public_base_url) for link in links], next_cursor=next_cursor)
    return LinkResponse(page)


async def get_link(request: Request) -> Response:
    runtime = _runtime(request)
    # The details hold the target even of expired links and links past max_clicks, which the
    # redirect never reveals: only the owner's keys may read them.
    principal = await _reader(request, runtime)
    link = await runtime.links.get(_path_code(request), workspace=principal.workspace)
    return LinkResponse(present(link, runtime.public_base_url))


async def update_link(request: Request) -> Response:
    runtime = _runtime(request)
    principal = await _writer(request, runtime)
    code = _path_code(request)
    payload = await read_json(request, max_bytes=runtime.max_body_bytes)
    check_shape(payload, UpdateLinkRequest)
    changes = parse_changes(payload, now=runtime.links.now(), targets=runtime.targets)
    link = await runtime.links.update(code, changes, workspace=principal.workspace)
    return LinkResponse(present(link, runtime.public_base_url))


async def delete_link(request: Request) -> Response:
    runtime = _runtime(request)
    principal = await _writer(request, runtime)
    await runtime.links.delete(_path_code(request), workspace=principal.workspace)
    return Response(status_code=204)


async def link_resource(request: Request) -> Response:
    if request.method == "PATCH":
        return await update_link(request)
    if request.method == "DELETE":
        return await delete_link(request)
    return await get_link(request)


def api_routes() -> list[Route]:
    return [
        Route("/api/v1/links", create_link, methods=["POST"]),
        Route("/api/v1/links", list_links, methods=["GET", "HEAD"]),
        Route("/api/v1/links/{code}", link_resource, methods=["GET", "HEAD", "PATCH", "DELETE"]),
    ]
