"""GET /api/v1/links/{code}/qr?format=svg|png&size=&margin=: a link's QR code, cacheable.

Read like the link's details (the same key check), then rendered by shorten.domain.qr. The ETag
is known before rendering: a matching If-None-Match is answered 304 without drawing anything.
"""

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
