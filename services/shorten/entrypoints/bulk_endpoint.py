"""POST /api/v1/links/bulk: many creates in one request (JSON or CSV), one result per row.

Order of checks: 429 (failed authentications) -> 401 -> 403 -> 415 (JSON or CSV) -> 413 (body
bytes, SHORTEN_BULK_MAX_BODY_BYTES; rows, at most 10,000) -> 400 (malformed JSON / CSV) -> 422
(the request's shape: not {"links": [...]}, an unknown CSV column, no rows) -> 429 (rate limit,
charged ONE write PER ROW, all rows or none: the body is read first to count them) -> 200 with
a result per row. A row breaking a rule is that row's error (the single create's code); the
request still answers 200 and the other rows are imported.
"""

import asyncio
from datetime import datetime

from platformkit.apikeys import Principal
from platformkit.errors import ApiError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shorten.bootstrap import Runtime
from shorten.domain.bulk import check_row_shape, csv_rows, json_rows
from shorten.domain.errors import ShortenError
from shorten.domain.model import CreateLink
from shorten.domain.targets import TargetRules
from shorten.entrypoints.body import JSON_MEDIA_TYPES, decode_json, media_type, read_body
from shorten.entrypoints.http import LinkResponse, _authenticate, _drain, _runtime, charge, create_command
from shorten.entrypoints.representation import present_import

CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv"})
# Rows validated between two yields to the event loop: 10,000 rows take a few hundred ms of
# CPU, which must not stall this process's other requests for all of that time.
_ROWS_PER_TURN = 500


async def _bulk_writer(request: Request, runtime: Runtime) -> Principal:
    try:
        principal = await _authenticate(request, runtime)
        principal.require("links:write")
        return principal
    except ApiError:
        await _drain(request, limit=runtime.bulk_max_body_bytes)
        raise


async def _rows(request: Request, runtime: Runtime) -> list[object]:
    kind = media_type(request)
    if kind not in JSON_MEDIA_TYPES and kind not in CSV_MEDIA_TYPES:
        raise ApiError("Content-Type must be application/json or text/csv", status=415, code="unsupported_media_type")
    body = await read_body(request, max_bytes=runtime.bulk_max_body_bytes)
    return json_rows(decode_json(body)) if kind in JSON_MEDIA_TYPES else csv_rows(body)


def row_command(row: object, *, now: datetime, targets: TargetRules, workspace: str) -> CreateLink | ShortenError:
    """A row -> its create command (the single create's validation), or why it is refused."""
    try:
        check_row_shape(row)
        return create_command(row, now=now, targets=targets, workspace=workspace)
    except ShortenError as failure:
        return failure


async def import_links(request: Request) -> Response:
    runtime = _runtime(request)
    principal = await _bulk_writer(request, runtime)
    rows = await _rows(request, runtime)
    await charge(runtime, principal, writes=len(rows))
    now, commands = runtime.links.now(), list[CreateLink | ShortenError]()
    for start in range(0, len(rows), _ROWS_PER_TURN):
        commands += [
            row_command(row, now=now, targets=runtime.targets, workspace=principal.workspace)
            for row in rows[start : start + _ROWS_PER_TURN]
        ]
        await asyncio.sleep(0)
    result = await runtime.importer.import_links(commands)
    return LinkResponse(present_import(result.rows, visible=result.visible, base_url=runtime.public_base_url))


def bulk_routes() -> list[Route]:
    return [Route("/api/v1/links/bulk", import_links, methods=["POST"])]
