"""The links API's bodies as msgspec Structs: what requests are checked against
(`check_shape`), what responses are encoded from, and the source of every schema of the OpenAPI
document (entrypoints/openapi.py), so the document and the code cannot disagree.

A request body is first checked against its Struct (types, unknown fields, the required url);
the domain's field rules (shorten.domain.validation) then normalise it and name the broken rule.
Constraints the domain reports under a rule of its own (url_too_long, tags_too_many, alias_reserved)
are documented on the Struct's fields from the same constants, and enforced there.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from contracts.links import CODE_PATTERN, Tag
from msgspec import UNSET, UnsetType

from shorten.domain.bulk import MAX_ROWS, RowResult
from shorten.domain.codes import RESERVED
from shorten.domain.errors import InvalidInput
from shorten.domain.model import Link
from shorten.domain.validation import ALIAS_MAX, ALIAS_MIN, MAX_CLICKS_LIMIT, MAX_TAGS, MAX_URL_LENGTH

Url = Annotated[
    str,
    msgspec.Meta(
        description="an http(s) URL with a host, no user:password@; non-ASCII is percent-encoded",
        extra_json_schema={
            "maxLength": MAX_URL_LENGTH,
            "minLength": 1,
            "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\\s]+",
        },
    ),
]
Alias = Annotated[
    str,
    msgspec.Meta(
        description="your own code instead of a generated one (never reused)",
        extra_json_schema={
            "pattern": f"^{CODE_PATTERN}$",
            "minLength": ALIAS_MIN,
            "maxLength": ALIAS_MAX,
            "not": {"enum": sorted(RESERVED)},
        },
    ),
]
Expiry = Annotated[
    str, msgspec.Meta(description="ISO 8601 with an offset, in the future", extra_json_schema={"format": "date-time"})
]
MaxClicks = Annotated[int, msgspec.Meta(ge=1, le=MAX_CLICKS_LIMIT, description="redirects allowed in total")]
Tags = Annotated[
    list[Tag],
    msgspec.Meta(description="the full list (PATCH replaces it; [] clears)", extra_json_schema={"maxItems": MAX_TAGS}),
]
PublicStats = Annotated[bool, msgspec.Meta(description="anyone may read the link's stats, without a key")]


class CreateLinkRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/links."""

    url: Url
    alias: Alias | None = None
    expires_at: Expiry | None = None
    redirect_type: Literal[301, 302] = 302
    max_clicks: MaxClicks | None = None
    public_stats: PublicStats = False
    tags: Tags = []


class UpdateLinkRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """PATCH /api/v1/links/{code}: at least one field; null clears expires_at and max_clicks."""

    url: Url | UnsetType = UNSET
    expires_at: Expiry | UnsetType | None = UNSET
    redirect_type: Literal[301, 302] | UnsetType = UNSET
    max_clicks: MaxClicks | UnsetType | None = UNSET
    public_stats: PublicStats | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET


class CodePath(msgspec.Struct, frozen=True):
    code: Annotated[str, msgspec.Meta(pattern=f"^{CODE_PATTERN}$", description="a short code or alias")]


# The stable code of a body field whose type is wrong (the domain's own code for that field).
FIELD_RULES = {
    "url": "url_invalid",
    "alias": "alias_invalid",
    "expires_at": "expires_at_invalid",
    "redirect_type": "redirect_type_invalid",
    "max_clicks": "max_clicks_invalid",
    "public_stats": "public_stats_invalid",
    "tags": "tags_invalid",
}


def check_shape(payload: object, struct: type[msgspec.Struct]) -> None:
    """422 with a stable code unless `payload` (decoded JSON) fits `struct`'s types."""
    try:
        msgspec.convert(payload, struct)
    except msgspec.ValidationError as exc:
        message = str(exc)
        if not isinstance(payload, dict):
            raise InvalidInput("the request body must be a JSON object", code="body_not_object") from None
        if "unknown field" in message:
            name = message.split("`", 2)[1][:64]  # client input: echo a bounded prefix
            raise InvalidInput(f"unknown field {name!r}", code="unknown_field", field=name) from None
        if "missing required field `url`" in message:
            raise InvalidInput("url is required", code="url_required", field="url") from None
        path = message.split("$.", 1)[1].split("`", 1)[0] if "$." in message else ""
        field = path.split("[", 1)[0]
        code = "tag_invalid" if path.startswith("tags[") else FIELD_RULES.get(field, "invalid_input")
        raise InvalidInput(message.split(" - at ")[0], code=code, field=field or None) from None


class LinkView(msgspec.Struct, frozen=True, kw_only=True):
    """A link as its workspace's keys see it."""

    code: str
    short_url: str
    url: str
    expires_at: datetime | None
    redirect_type: Literal[301, 302]
    max_clicks: int | None
    created_at: datetime
    workspace: str
    public_stats: bool
    tags: tuple[str, ...]


class LinkPage(msgspec.Struct, frozen=True, kw_only=True):
    """GET /api/v1/links: newest first; `next_cursor` is null on the last page."""

    links: list[LinkView]
    next_cursor: str | None


def present(link: Link, base_url: str) -> LinkView:
    return LinkView(
        code=link.code,
        short_url=f"{base_url}/{link.code}",
        url=link.url,
        expires_at=link.expires_at,
        redirect_type=link.redirect_type,
        max_clicks=link.max_clicks,
        created_at=link.created_at,
        workspace=link.workspace,
        public_stats=link.public_stats,
        tags=link.tags,
    )


class BulkImportRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """POST /api/v1/links/bulk as JSON (the same rows as CSV, Content-Type text/csv, header row
    first). Each row is checked on its own, exactly as a POST /api/v1/links body: a row that
    breaks a rule is an error row of the answer, the others are still imported."""

    links: Annotated[list[CreateLinkRequest], msgspec.Meta(min_length=1, max_length=MAX_ROWS)]


class RowErrorView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str
    field: str | None


class RowResultView(msgspec.Struct, frozen=True, kw_only=True):
    """One row's outcome, in input order (`row`: 0-based index of the row in `links`, or of the
    CSV data row, header and blank lines not counted)."""

    row: int
    status: Literal["created", "exists", "error"]
    code: str | None
    short_url: str | None
    error: RowErrorView | None


class BulkImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """The answer of a bulk import: counts, whether every created link was seen served by every
    redirect replica before answering (read your writes), and one result per row."""

    created: int
    exists: int
    errors: int
    visible: bool
    results: list[RowResultView]


def present_import(rows: Sequence[RowResult], *, visible: bool, base_url: str) -> BulkImportResult:
    views = [
        RowResultView(
            row=r.row,
            status=r.status,
            code=r.code,
            short_url=None if r.code is None else f"{base_url}/{r.code}",
            error=None
            if r.error is None
            else RowErrorView(code=r.error.code, message=r.error.message, field=r.error.field),
        )
        for r in rows
    ]
    counts = Counter(r.status for r in rows)
    return BulkImportResult(
        created=counts["created"], exists=counts["exists"], errors=counts["error"], visible=visible, results=views
    )
