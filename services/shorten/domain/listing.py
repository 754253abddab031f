"""The list of a workspace's links (GET /api/v1/links): query parameters -> ListQuery, and the
opaque cursor of keyset pagination.

Newest first, ordered by (created_at, code) descending: a page is "the next `limit` links
strictly after the cursor's (created_at, code)", an index range scan wherever the page is (no
OFFSET, which reads and drops every earlier row and shifts when links are added). Links created
while a client walks the pages sort before its cursor, so they never push an already listed
link onto the next page: each link that existed when the walk started is listed exactly once.
"""

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from platformkit.openapi import MultiItems, QueryInvalid, parse_query

from shorten.domain.errors import InvalidInput
from shorten.domain.validation import validate_tag

DEFAULT_LIMIT, MAX_LIMIT = 20, 100
MAX_QUERY_LENGTH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last listed link's (created_at, code)."""

    created_at: datetime
    code: str


@dataclass(frozen=True, kw_only=True)
class ListQuery:
    workspace: str
    q: str | None = None  # case-insensitive substring of the code or the URL
    tag: str | None = None  # exact
    after: Position | None = None
    limit: int = DEFAULT_LIMIT


def encode_cursor(position: Position) -> str:
    """Opaque to clients: base64url of "<microseconds since epoch>.<code>" (codes have no dot)."""
    micros = (position.created_at - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{position.code}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    invalid = InvalidInput("cursor is not one this API returned", code="cursor_invalid", field="cursor")
    if not 1 <= len(cursor) <= 200 or not cursor.isascii():
        raise invalid
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        micros, _, code = text.partition(".")
        if not (micros.isdigit() and code):
            raise invalid
        return Position(_EPOCH + timedelta(microseconds=int(micros)), code)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise invalid from exc


def _query(raw: str | None) -> str | None:
    if not raw:
        return None
    if len(raw) > MAX_QUERY_LENGTH or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise InvalidInput(
            f"q must be at most {MAX_QUERY_LENGTH} characters without control characters", code="q_invalid", field="q"
        )
    return raw


class ListParams(msgspec.Struct, frozen=True):
    """GET /api/v1/links's query, as decoded and as documented (other parameters are ignored)."""

    q: Annotated[
        str | None,
        msgspec.Meta(
            description="case-insensitive substring of the code or URL",
            extra_json_schema={"maxLength": MAX_QUERY_LENGTH},
        ),
    ] = None
    tag: Annotated[str | None, msgspec.Meta(description="links with exactly this tag")] = None
    cursor: Annotated[str | None, msgspec.Meta(description="next_cursor of the previous page")] = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT


def parse_list_query(params: Mapping[str, str] | MultiItems, *, workspace: str) -> ListQuery:
    """`q`, `tag`, `cursor`, `limit` (other parameters are ignored); 422 with a stable code each."""
    limit = params.get("limit") if isinstance(params, Mapping) else dict(params.multi_items()).get("limit")
    try:
        if limit is not None and not (limit.isascii() and limit.isdigit() and len(limit) <= 3):
            raise QueryInvalid("limit must be written as a whole number", field="limit")  # not 1e2, not ²
        decoded = parse_query(ListParams, params)
    except QueryInvalid as exc:
        field = exc.field or "limit"
        raise InvalidInput(f"{field} is not valid: {exc}", code=f"{field}_invalid", field=field) from None
    return ListQuery(
        workspace=workspace,
        q=_query(decoded.q),
        tag=validate_tag(decoded.tag, field="tag") if decoded.tag else None,
        after=decode_cursor(decoded.cursor) if decoded.cursor else None,
        limit=decoded.limit,
    )


def like_pattern(q: str) -> str:
    """`q` as an ILIKE pattern matching it anywhere, its own % _ and \\ taken literally."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
