"""GET /api/v1/links/{code}/qr?format=svg|png&size=&margin=: a link's QR code, cacheable.

Read like the link's details (the same key check), then rendered by shorten.domain.qr. The ETag
is known before rendering: a matching If-None-Match is answered 304 without drawing anything.
"""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shorten.domain import qr
from shorten.entrypoints.http import _path_code, _reader, _runtime

# Private: the endpoint needs the API key, so shared caches must not keep it; the browser may,
# for a day, and revalidates with the ETag after that.
CACHE_CONTROL = "private, max-age=86400"


async def link_qr(request: Request) -> Response:
    runtime = _runtime(request)
    principal = await _reader(request, runtime)
    options = qr.parse_options(request.query_params)
    link = await runtime.links.get(_path_code(request), workspace=principal.workspace)
    short_url = f"{runtime.public_base_url}/{link.code}"
    tag = qr.etag(short_url, options)
    headers = {"ETag": tag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization"}
    if tag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(qr.render(short_url, options), media_type=qr.media_type(options), headers=headers)


def qr_routes() -> list[Route]:
    return [Route("/api/v1/links/{code}/qr", link_qr, methods=["GET", "HEAD"])]


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_path() -> dict[str, Any]:
    """This endpoint's entry in the shorten OpenAPI document."""
    bounded = [
        ("format", {"type": "string", "enum": sorted(qr.FORMATS), "default": "svg"}),
        ("size", {"type": "integer", "minimum": qr.SIZE_MIN, "maximum": qr.SIZE_MAX, "default": qr.SIZE_DEFAULT}),
        ("margin", {"type": "integer", "minimum": qr.MARGIN_MIN, "maximum": qr.MARGIN_MAX,
                    "default": qr.MARGIN_DEFAULT}),
    ]
    return {
        "parameters": [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"}}],
        "get": {
            "summary": "The link's QR code (of its short URL); size in pixels, margin in modules",
            "security": [{"apiKey": []}],
            "parameters": [{"name": n, "in": "query", "schema": s} for n, s in bounded],
            "responses": {
                "200": {
                    "description": "the image, with an ETag and Cache-Control",
                    "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in qr.MEDIA_TYPES.values()},
                },
                "304": {"description": "If-None-Match matched the ETag"},
                "401": _error("missing or invalid API key (codes: api_key_missing, api_key_invalid)"),
                "404": _error("unknown code (codes: not_found)"),
                "410": _error("the link was deleted (codes: link_deleted)"),
                "422": _error("bad parameter (codes: parameter_unknown, format_invalid, size_invalid, margin_invalid)"),
            },
        },
    }
