"""The links API through the public entry point (nginx :8080), end to end with the topic."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from contracts.links import LinkCreated, LinkDeleted, LinkUpdated
from prometheus_client.parser import text_string_to_metric_families
from stackctl.config import StackSettings

from tests.conftest import public_url
from tests.integration.shorten.support import LinksTopic, unique_alias

pytestmark = pytest.mark.e2e


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=public_url(), timeout=10, limits=httpx.Limits(max_connections=20)) as c:
        yield c


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


async def test_link_lifecycle_through_nginx_reaches_the_topic(public: httpx.AsyncClient, auth: dict[str, str]) -> None:
    async with LinksTopic() as topic:
        created = await public.post("/api/v1/links", json={"url": "https://bücher.example/e2e"}, headers=auth)
        assert created.status_code == 201, created.text
        link = created.json()
        code = link["code"]
        assert link["short_url"] == f"{public_url()}/{code}"
        assert link["url"] == "https://xn--bcher-kva.example/e2e"
        assert (await public.get(f"/api/v1/links/{code}", headers=auth)).json() == link

        patched = await public.patch(f"/api/v1/links/{code}", json={"redirect_type": 301}, headers=auth)
        assert patched.status_code == 200 and patched.json()["redirect_type"] == 301
        assert (await public.delete(f"/api/v1/links/{code}", headers=auth)).status_code == 204
        gone = await public.get(f"/api/v1/links/{code}", headers=auth)
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "link_deleted"

        seen = await topic.wait_for([code], 3, timeout=20)
    assert [type(s.event) for s in seen] == [LinkCreated, LinkUpdated, LinkDeleted]
    assert {s.key for s in seen} == {code.encode()} and len({s.partition for s in seen}) == 1


@pytest.mark.parametrize(
    ("send", "status", "code"),
    [
        ({"json": {"url": "ftp://e.com"}}, 422, "url_scheme_not_allowed"),
        ({"json": {"url": "https://e.com", "alias": "healthz"}}, 422, "alias_reserved"),
        ({"json": {"url": "https://e.com", "max_clicks": 0}}, 422, "max_clicks_invalid"),
        ({"json": {"url": "https://e.com", "extra": 1}}, 422, "unknown_field"),
        ({"json": ["https://e.com"]}, 422, "body_not_object"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed_json"),
        ({"content": b"url=https://e.com", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
        (
            {
                "content": b'{"url":"https://e.com"' + b" " * 20_000 + b"}",
                "headers": {"Content-Type": "application/json"},
            },
            413,
            "payload_too_large",
        ),
    ],
    ids=["scheme", "reserved", "max_clicks", "unknown", "not-object", "malformed", "media-type", "too-large"],
)
async def test_errors_keep_their_status_and_code_through_nginx(
    public: httpx.AsyncClient, auth: dict[str, str], send: dict[str, object], status: int, code: str
) -> None:
    send = dict(send)
    headers = {**auth, **send.pop("headers", {})}  # type: ignore[dict-item]
    response = await public.post("/api/v1/links", headers=headers, **send)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_missing_api_key_through_nginx(public: httpx.AsyncClient) -> None:
    response = await public.post("/api/v1/links", json={"url": "https://e.com"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "api_key_missing"


async def test_twenty_concurrent_creates_of_one_alias_through_nginx(
    public: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    alias = unique_alias("race")
    go = asyncio.Event()

    async def attempt(i: int) -> int:
        await go.wait()
        response = await public.post("/api/v1/links", json={"url": f"https://e.com/{i}", "alias": alias}, headers=auth)
        return response.status_code

    tasks = [asyncio.create_task(attempt(i)) for i in range(20)]
    go.set()
    assert Counter(await asyncio.gather(*tasks)) == {201: 1, 409: 19}


def created_so_far(port: int) -> float:
    """The 201s to POST /api/v1/links one shorten process has counted (its own /metrics)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels.get("route") == "/api/v1/links"
        and sample.labels.get("method") == "POST"
        and sample.labels.get("status") == "201"
    )


async def test_nginx_spreads_creates_over_every_shorten_process(
    public: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    ports = StackSettings().shorten_ports
    assert len(ports) >= 2, "the stack runs SHORTEN_PROCESSES >= 2 shorten processes behind nginx"
    before = {port: created_so_far(port) for port in ports}
    creates = 20 * len(ports)
    for i in range(creates):  # one at a time: nginx's round robin, not a burst, decides
        response = await public.post("/api/v1/links", json={"url": f"https://spread.example/{i}"}, headers=auth)
        assert response.status_code == 201, response.text
    served = {port: created_so_far(port) - before[port] for port in ports}
    # Other tests may create links meanwhile, so at least ours were counted somewhere...
    assert sum(served.values()) >= creates
    # ...and every process took a fair part of them (round robin per nginx worker gives ~1/N each).
    assert all(count >= creates / len(ports) / 4 for count in served.values()), served
