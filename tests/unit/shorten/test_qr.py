"""QR codes (shorten.domain.qr): the parameters, and images that decode back to the short URL."""

import io
import re
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image
from shorten.domain import qr
from shorten.domain.errors import InvalidInput

pytestmark = pytest.mark.unit

SHORT_URL = "https://sho.rt/Ab3dEf9h"


def decoded(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_defaults() -> None:
    assert qr.parse_options({}) == qr.QrOptions(format="svg", size=300, margin=4)


@pytest.mark.parametrize(("size", "margin"), [(64, 0), (300, 4), (1000, 2), (2048, 16)])
def test_the_png_decodes_back_to_the_short_url_and_fits_the_size(size: int, margin: int) -> None:
    png = qr.render(SHORT_URL, qr.QrOptions(format="png", size=size, margin=margin))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == image.height
    modules = 21 + 2 * margin  # version 1..: at least 21 modules; the whole symbol must fit
    assert modules <= image.width <= max(size, modules)
    if margin >= 1:  # a decoder needs some quiet zone; with none it is the caller's frame
        assert decoded(png) == [SHORT_URL]


def test_a_bigger_size_gives_a_bigger_png() -> None:
    small = Image.open(io.BytesIO(qr.render(SHORT_URL, qr.QrOptions(format="png", size=100))))
    large = Image.open(io.BytesIO(qr.render(SHORT_URL, qr.QrOptions(format="png", size=800))))
    assert large.width > 4 * small.width


def test_the_svg_is_exactly_size_wide_and_titled() -> None:
    svg = qr.render(SHORT_URL, qr.QrOptions(format="svg", size=256, margin=4)).decode()
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert float(root.attrib["width"]) == pytest.approx(256) and float(root.attrib["height"]) == pytest.approx(256)
    assert root.find("{http://www.w3.org/2000/svg}title").text == f"QR code of {SHORT_URL}"  # type: ignore[union-attr]
    assert re.search(r"<path[^>]+d=\"M", svg)  # the modules, drawn as one path


def test_the_etag_depends_only_on_the_url_and_the_options() -> None:
    options = qr.QrOptions(format="png", size=320, margin=2)
    assert qr.etag(SHORT_URL, options) == qr.etag(SHORT_URL, qr.QrOptions(format="png", size=320, margin=2))
    others = {
        qr.etag(SHORT_URL + "x", options),
        qr.etag(SHORT_URL, qr.QrOptions(format="png", size=321, margin=2)),
        qr.etag(SHORT_URL, qr.QrOptions(format="png", size=320, margin=3)),
    }
    assert qr.etag(SHORT_URL, options) not in others and len(others) == 3
    assert qr.etag(SHORT_URL, qr.QrOptions(format="svg")) != qr.etag(SHORT_URL, qr.QrOptions(format="png"))


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"format": "gif"}, "format_invalid", "format"),
        ({"format": ""}, "format_invalid", "format"),
        ({"size": "63"}, "size_invalid", "size"),
        ({"size": "2049"}, "size_invalid", "size"),
        ({"size": "abc"}, "size_invalid", "size"),
        ({"size": "²"}, "size_invalid", "size"),
        ({"size": "-5"}, "size_invalid", "size"),
        ({"size": "9" * 400}, "size_invalid", "size"),
        ({"margin": "17"}, "margin_invalid", "margin"),
        ({"margin": "1.5"}, "margin_invalid", "margin"),
        ({"colour": "red"}, "parameter_unknown", "colour"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, str], code: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        qr.parse_options(params)
    assert (refused.value.code, refused.value.field) == (code, field)


def test_format_is_case_insensitive_and_bounds_are_inclusive() -> None:
    assert qr.parse_options({"format": "PNG", "size": "64", "margin": "0"}) == qr.QrOptions(
        format="png", size=64, margin=0
    )
    assert qr.parse_options({"size": "2048", "margin": "16"}).size == 2048
