"""Reading a JSON request body safely: content type, size (declared AND streamed), syntax."""

import msgspec
from platformkit.errors import ApiError
from starlette.requests import Request

JSON_MEDIA_TYPES = frozenset({"application/json", "application/merge-patch+json"})


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(f"request body is larger than {max_bytes} bytes", status=413, code="payload_too_large")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def read_json(request: Request, *, max_bytes: int) -> object:
    """The decoded JSON value (any type: the command parser checks the shape).

    415 unless application/json; 413 when Content-Length says too much (before reading) or
    when the streamed bytes exceed the limit (chunked bodies, lying clients); 400 for
    malformed JSON, including nesting too deep to decode.
    """
    if media_type(request) not in JSON_MEDIA_TYPES:
        raise ApiError("Content-Type must be application/json", status=415, code="unsupported_media_type")
    return decode_json(await read_body(request, max_bytes=max_bytes))


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw body, at most `max_bytes` (413 before reading when Content-Length says more,
    413 while reading once more arrived)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):  # isdigit() alone takes "²"
            raise ApiError("invalid Content-Length", status=400, code="invalid_content_length")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return bytes(body)


def decode_json(body: bytes) -> object:
    """400 malformed_json for anything msgspec cannot decode (syntax, nesting, not UTF-8)."""
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise ApiError(f"malformed JSON: {exc}"[:200], status=400, code="malformed_json") from exc
