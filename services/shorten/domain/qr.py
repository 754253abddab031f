"""QR codes of short URLs (segno): the query parameters checked, the image rendered. Pure: no I/O.

The image depends only on the short URL and the parameters, so its ETag is their digest (and the
version of segno, whose encoder chooses the symbol) and it can be cached as long as the link lives.
"""

import hashlib
import io
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
import segno
from platformkit.openapi import QueryInvalid, parse_query

from shorten.domain.errors import InvalidInput

Format = Literal["svg", "png"]
FORMATS: dict[str, Format] = {"svg": "svg", "png": "png"}
MEDIA_TYPES: dict[Format, str] = {"svg": "image/svg+xml", "png": "image/png"}
SIZE_MIN, SIZE_MAX, SIZE_DEFAULT = 64, 2048, 300
MARGIN_MIN, MARGIN_MAX, MARGIN_DEFAULT = 0, 16, 4
PARAMS = frozenset({"format", "size", "margin"})


class QrOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The query string, as decoded and as documented: format; size: the image's width and height
    in pixels (a PNG: the largest whole number of pixels per module that fits, at least one);
    margin: the quiet zone, in modules."""

    format: Format = "svg"
    size: Annotated[int, msgspec.Meta(ge=SIZE_MIN, le=SIZE_MAX, description="pixels (a PNG: at most)")] = SIZE_DEFAULT
    margin: Annotated[int, msgspec.Meta(ge=MARGIN_MIN, le=MARGIN_MAX, description="quiet zone, in modules")] = (
        MARGIN_DEFAULT
    )


RULES = {
    "format": "format must be svg or png",
    "size": f"size must be a whole number from {SIZE_MIN} to {SIZE_MAX}",
    "margin": f"margin must be a whole number from {MARGIN_MIN} to {MARGIN_MAX}",
}


def parse_options(params: Mapping[str, str]) -> QrOptions:
    """The query string -> QrOptions; 422 codes: parameter_unknown, format_invalid, size_invalid,
    margin_invalid."""
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise InvalidInput(
            f"unknown parameter {unknown[0][:40]!r}; allowed: {', '.join(sorted(PARAMS))}",
            code="parameter_unknown",
            field=unknown[0][:40],
        )
    values = {k: (v.lower() if k == "format" else v) for k, v in params.items()}
    try:
        return parse_query(QrOptions, values)
    except QueryInvalid as exc:
        field = exc.field if exc.field in RULES else "format"
        raise InvalidInput(RULES[field], code=f"{field}_invalid", field=field) from None


def etag(short_url: str, options: QrOptions) -> str:
    digest = hashlib.sha256(
        f"{segno.__version__}\0{short_url}\0{options.format}\0{options.size}\0{options.margin}".encode()
    ).hexdigest()
    return f'"{digest[:32]}"'


def render(short_url: str, options: QrOptions) -> bytes:
    """The QR code of `short_url` as SVG or PNG bytes, `options.size` pixels wide at most."""
    qr = segno.make(short_url, micro=False)
    modules = qr.symbol_size(scale=1, border=options.margin)[0]
    out = io.BytesIO()
    if options.format == "png":
        qr.save(out, kind="png", scale=max(1, options.size // modules), border=options.margin)
    else:
        # SVG scales freely: exactly `size` wide, with a title for screen readers.
        qr.save(
            out,
            kind="svg",
            scale=options.size / modules,
            border=options.margin,
            title=f"QR code of {short_url}",
            xmldecl=False,
            nl=False,
        )
    return out.getvalue()


def media_type(options: QrOptions) -> str:
    return MEDIA_TYPES[options.format]
