"""Reading a JSON request body safely: content type, size (declared AND streamed), syntax."""

import msgspec
from platformkit.errors import ApiError
from starlette.requests import Request

JSON_MEDIA_TYPES = frozenset({"application/json", "application/merge-patch+json"})


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(f"request body is larger than {max_bytes} bytes", status=413, code="payload_too_large")


async def read_json(request: Request, *, max_bytes: int) -> object:
    """The decoded JSON value (any type: the command parser checks the shape).

    415 unless application/json; 413 when Content-Length says too much (before reading) or
    when the streamed bytes exceed the limit (chunked bodies, lying clients); 400 for
    malformed JSON, including nesting too deep to decode.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise ApiError("Content-Type must be application/json", status=415, code="unsupported_media_type")
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
    try:
        return msgspec.json.decode(bytes(body))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise ApiError(f"malformed JSON: {exc}"[:200], status=400, code="malformed_json") from exc
