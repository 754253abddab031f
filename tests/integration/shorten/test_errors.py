"""Every bad input gets its status and stable error code, in the one JSON error shape."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import public_url, shorten_url
from tests.integration.shorten.support import unique_alias

pytestmark = pytest.mark.integration

LIMIT = 16 * 1024
PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()


def assert_error(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field


CREATE_CASES = [
    ({"url": "ftp://example.com/f"}, "url_scheme_not_allowed", "url"),
    ({"url": "javascript:alert(1)"}, "url_scheme_not_allowed", "url"),
    ({"url": "example.com"}, "url_scheme_not_allowed", "url"),
    ({"url": "http:///nohost"}, "url_missing_host", "url"),
    ({"url": "https://example.com/" + "a" * 2048}, "url_too_long", "url"),
    ({"url": "https://user:pass@example.com/"}, "url_has_credentials", "url"),
    ({"url": "https://user@example.com/"}, "url_has_credentials", "url"),
    ({"url": "https://a..b/"}, "url_host_invalid", "url"),
    ({"url": "https://exa mple.com/"}, "url_invalid", "url"),
    ({"url": 12}, "url_invalid", "url"),
    ({"url": None}, "url_invalid", "url"),
    ({}, "url_required", "url"),
    # The stack's own public host (SHORTEN_PUBLIC_BASE_URL), any port: a redirect loop.
    ({"url": f"{public_url()}/abc"}, "url_self_reference", "url"),
    ({"url": f"http://{urlsplit(public_url()).hostname}:9/x"}, "url_self_reference", "url"),
    ({"url": "https://e.com", "alias": "ab"}, "alias_invalid", "alias"),
    ({"url": "https://e.com", "alias": "a" * 65}, "alias_invalid", "alias"),
    ({"url": "https://e.com", "alias": "has space"}, "alias_invalid", "alias"),
    ({"url": "https://e.com", "alias": "sl/ash"}, "alias_invalid", "alias"),
    ({"url": "https://e.com", "alias": 1234}, "alias_invalid", "alias"),
    ({"url": "https://e.com", "alias": "api"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "healthz"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "readyz"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "Metrics"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "static"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "openapi.json"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "favicon.ico"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "alias": "robots.txt"}, "alias_reserved", "alias"),
    ({"url": "https://e.com", "expires_at": "2030-01-01T00:00:00"}, "expires_at_invalid", "expires_at"),
    ({"url": "https://e.com", "expires_at": "next week"}, "expires_at_invalid", "expires_at"),
    ({"url": "https://e.com", "expires_at": 1893456000}, "expires_at_invalid", "expires_at"),
    ({"url": "https://e.com", "expires_at": PAST}, "expires_at_in_past", "expires_at"),
    ({"url": "https://e.com", "redirect_type": 307}, "redirect_type_invalid", "redirect_type"),
    ({"url": "https://e.com", "redirect_type": "301"}, "redirect_type_invalid", "redirect_type"),
    ({"url": "https://e.com", "max_clicks": 0}, "max_clicks_invalid", "max_clicks"),
    ({"url": "https://e.com", "max_clicks": -5}, "max_clicks_invalid", "max_clicks"),
    ({"url": "https://e.com", "max_clicks": 2.5}, "max_clicks_invalid", "max_clicks"),
    ({"url": "https://e.com", "max_clicks": True}, "max_clicks_invalid", "max_clicks"),
    ({"url": "https://e.com", "max_clicks": "10"}, "max_clicks_invalid", "max_clicks"),
    ({"url": "https://e.com", "max_clicks": 10**40}, "max_clicks_invalid", "max_clicks"),
    ({"url": "https://e.com", "owner": "me"}, "unknown_field", "owner"),
]


@pytest.mark.parametrize(("body", "code", "field"), CREATE_CASES, ids=lambda v: str(v)[:40])
async def test_create_rejects(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, object], code: str, field: str
) -> None:
    assert_error(await client.post("/api/v1/links", json=body, headers=auth), 422, code, field)


@pytest.mark.parametrize("payload", [b"[]", b'"https://e.com"', b"42", b"null", b"true", b'[{"url":"https://e.com"}]'])
async def test_non_object_json_is_422(client: httpx.AsyncClient, auth: dict[str, str], payload: bytes) -> None:
    response = await client.post("/api/v1/links", content=payload, headers={**auth, "Content-Type": "application/json"})
    assert_error(response, 422, "body_not_object")


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b'{"url":}',
        b"",
        b"\xff\xfe{}",
        b'{"url": "https://e.com",}',
        b"NaN",
        b"[" * 10000,
        b"{'url': 'x'}",
        b'{"url": "https://e.com/\\ud800"}',
        b'{"url": "https://e.com", "max_clicks": 1e400}',
    ],
    ids=[
        "open",
        "no-value",
        "empty",
        "bad-utf8",
        "trailing-comma",
        "nan",
        "deep-nesting",
        "single-quotes",
        "lone-surrogate",
        "number-out-of-range",
    ],
)
async def test_malformed_json_is_400_never_500(client: httpx.AsyncClient, auth: dict[str, str], payload: bytes) -> None:
    response = await client.post("/api/v1/links", content=payload, headers={**auth, "Content-Type": "application/json"})
    assert_error(response, 400, "malformed_json")


@pytest.fixture
async def existing(client: httpx.AsyncClient, auth: dict[str, str]) -> AsyncIterator[str]:
    alias = unique_alias("err")
    response = await client.post("/api/v1/links", json={"url": "https://e.com", "alias": alias}, headers=auth)
    assert response.status_code == 201
    yield alias


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "no_changes", None),
        ({"alias": "new-name"}, "unknown_field", "alias"),
        ({"code": "x"}, "unknown_field", "code"),
        ({"url": "mailto:a@b.c"}, "url_scheme_not_allowed", "url"),
        ({"url": "https://u:p@e.com"}, "url_has_credentials", "url"),
        ({"url": f"{public_url()}/loop"}, "url_self_reference", "url"),
        ({"url": None}, "url_invalid", "url"),
        ({"expires_at": PAST}, "expires_at_in_past", "expires_at"),
        ({"expires_at": "soon"}, "expires_at_invalid", "expires_at"),
        ({"redirect_type": 303}, "redirect_type_invalid", "redirect_type"),
        ({"max_clicks": 0}, "max_clicks_invalid", "max_clicks"),
        ([{"max_clicks": 1}], "body_not_object", None),
    ],
)
async def test_patch_rejects(
    client: httpx.AsyncClient, auth: dict[str, str], existing: str, body: object, code: str, field: str | None
) -> None:
    response = await client.patch(f"/api/v1/links/{existing}", json=body, headers=auth)
    assert_error(response, 422, code, field)
    unchanged = (await client.get(f"/api/v1/links/{existing}", headers=auth)).json()
    assert (unchanged["url"], unchanged["redirect_type"], unchanged["max_clicks"]) == ("https://e.com", 302, None)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "api_key_missing"),
        ({"Authorization": "Bearer not-a-real-key"}, "api_key_invalid"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "api_key_invalid"),
        ({"Authorization": "Bearer"}, "api_key_invalid"),
    ],
)
async def test_writes_and_reads_need_a_valid_api_key(
    client: httpx.AsyncClient, existing: str, headers: dict[str, str], code: str, auth: dict[str, str]
) -> None:
    for response in (
        await client.get(f"/api/v1/links/{existing}", headers=headers),
        await client.post("/api/v1/links", json={"url": "https://e.com"}, headers=headers),
        await client.patch(f"/api/v1/links/{existing}", json={"max_clicks": 2}, headers=headers),
        await client.delete(f"/api/v1/links/{existing}", headers=headers),
    ):
        assert_error(response, 401, code)
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get(f"/api/v1/links/{existing}", headers=auth)).status_code == 200  # nothing was deleted


async def test_the_wrong_key_is_refused_before_the_body_is_judged(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/links", content=b"{", headers={"Content-Type": "text/plain"})
    assert_error(response, 401, "api_key_missing")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, auth: dict[str, str], existing: str, content_type: str | None
) -> None:
    headers = dict(auth) | ({"Content-Type": content_type} if content_type else {})
    payload = json.dumps({"url": "https://e.com"}).encode()
    assert_error(await client.post("/api/v1/links", content=payload, headers=headers), 415, "unsupported_media_type")
    patch = await client.patch(f"/api/v1/links/{existing}", content=b'{"max_clicks": 3}', headers=headers)
    assert_error(patch, 415, "unsupported_media_type")


async def test_json_with_charset_parameter_is_accepted(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "application/json; charset=utf-8"}
    response = await client.post("/api/v1/links", content=b'{"url": "https://e.com"}', headers=headers)
    assert response.status_code == 201


def padded(size: int) -> bytes:
    """A valid create body of exactly `size` bytes (JSON whitespace padding)."""
    body = b'{"url": "https://example.com/padded"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def test_body_of_exactly_16_kib_is_accepted(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/links", content=padded(LIMIT), headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


async def test_declared_content_length_over_16_kib_is_413(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/links", content=padded(LIMIT + 1), headers={**auth, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole response: its head, then Content-Length bytes (or up to EOF without one).
    Not up to EOF in general: after answering a request whose body it refused, a server may
    close the connection (hypercorn, granian) or keep reading the body for keep-alive (uvicorn)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lengths = [
        int(value)
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
        if name.strip().lower() == b"content-length"
    ]
    return head + (await reader.readexactly(lengths[0]) if lengths else await reader.read())


async def raw_exchange(request: bytes) -> bytes:
    """Send raw bytes to the shorten port and read the whole answer.

    Raw, because HTTP clients either refuse such requests (bad Content-Length) or, like
    httpx, do not read the answer until they finished sending a body the server refused.
    """
    host, port = shorten_url().removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(read_response(reader), 10)
    finally:
        writer.close()
        await writer.wait_closed()


def status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]["code"] if body.strip() else ""


async def test_streamed_body_over_16_kib_is_413_without_content_length(auth: dict[str, str]) -> None:
    """Chunked transfer encoding (no Content-Length): the server counts the streamed bytes.

    17 chunks of 1 KiB, and no final chunk: the answer can only come from counting."""
    chunks = b"".join(b"400\r\n" + b" " * 1024 + b"\r\n" for _ in range(17))
    answer = await raw_exchange(
        b"POST /api/v1/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {auth['Authorization']}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunks
    )
    assert status_and_error(answer) == (413, "payload_too_large")


async def test_chunked_body_under_the_limit_is_accepted(auth: dict[str, str]) -> None:
    payload = b'{"url": "https://example.com/chunked"}'
    answer = await raw_exchange(
        b"POST /api/v1/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {auth['Authorization']}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(payload):x}\r\n".encode()
        + payload
        + b"\r\n0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]


async def test_invalid_content_length_is_4xx(auth: dict[str, str]) -> None:
    answer = await raw_exchange(
        b"POST /api/v1/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {auth['Authorization']}\r\n".encode()
        + b"Content-Length: -1\r\nConnection: close\r\n\r\n{}"
    )
    assert answer[9:10] == b"4", answer[:200]


async def test_unknown_route_and_wrong_method_are_json(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await client.put("/api/v1/links/abcdefg", json={}, headers=auth), 405, "method_not_allowed")
    assert_error(await client.put("/api/v1/links", json={}, headers=auth), 405, "method_not_allowed")
    assert_error(await client.get("/api/v1/links"), 401, "api_key_missing")  # the list needs a key
