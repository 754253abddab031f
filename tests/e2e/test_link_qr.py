"""GET /api/v1/links/{code}/qr through the public entry point: images that decode back to the
short URL, cacheable, with named errors."""

import io
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import httpx
import pytest
import zxingcpp
from PIL import Image

from tests.conftest import public_url

pytestmark = pytest.mark.e2e


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as c:
        yield c


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
async def link(public: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, str]:
    created = await public.post("/api/v1/links", json={"url": "https://example.com/qr"}, headers=auth)
    assert created.status_code == 201, created.text
    link: dict[str, str] = created.json()
    return link


async def test_the_png_decodes_back_to_the_short_url(
    public: httpx.AsyncClient, auth: dict[str, str], link: dict[str, str]
) -> None:
    response = await public.get(f"/api/v1/links/{link['code']}/qr", params={"format": "png", "size": 400}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.width <= 400
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [link["short_url"]]
    assert link["short_url"].startswith(public_url())


async def test_the_svg_is_the_default_and_names_the_short_url(
    public: httpx.AsyncClient, auth: dict[str, str], link: dict[str, str]
) -> None:
    response = await public.get(f"/api/v1/links/{link['code']}/qr", params={"size": 200, "margin": 2}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert float(root.attrib["width"]) == pytest.approx(200)
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text == f"QR code of {link['short_url']}"


async def test_cacheable_with_an_etag(public: httpx.AsyncClient, auth: dict[str, str], link: dict[str, str]) -> None:
    path = f"/api/v1/links/{link['code']}/qr"
    first = await public.get(path, params={"format": "png"}, headers=auth)
    again = await public.get(path, params={"format": "png"}, headers=auth)
    assert first.status_code == again.status_code == 200
    assert first.headers["etag"] == again.headers["etag"] and first.content == again.content
    assert "max-age=" in first.headers["cache-control"] and "private" in first.headers["cache-control"]
    other = await public.get(path, params={"format": "png", "size": 301}, headers=auth)
    assert other.headers["etag"] != first.headers["etag"]
    conditional = {**auth, "If-None-Match": first.headers["etag"]}
    revalidated = await public.get(path, params={"format": "png"}, headers=conditional)
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"format": "jpeg"}, "format_invalid"),
        ({"size": "10"}, "size_invalid"),
        ({"size": "99999"}, "size_invalid"),
        ({"margin": "x"}, "margin_invalid"),
        ({"fg": "red"}, "parameter_unknown"),
    ],
)
async def test_bad_parameters_are_422_with_a_code(
    public: httpx.AsyncClient, auth: dict[str, str], link: dict[str, str], params: dict[str, str], code: str
) -> None:
    response = await public.get(f"/api/v1/links/{link['code']}/qr", params=params, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


async def test_unknown_deleted_and_unauthenticated(
    public: httpx.AsyncClient, auth: dict[str, str], link: dict[str, str]
) -> None:
    unknown = await public.get("/api/v1/links/NoSuchCode9/qr", headers=auth)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    missing_key = await public.get(f"/api/v1/links/{link['code']}/qr")
    assert missing_key.status_code == 401 and missing_key.json()["error"]["code"] == "api_key_missing"
    assert (await public.delete(f"/api/v1/links/{link['code']}", headers=auth)).status_code == 204
    gone = await public.get(f"/api/v1/links/{link['code']}/qr", headers=auth)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "link_deleted"
