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


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}", code="limit_invalid", field="limit")
    return int(raw)


def _query(raw: str | None) -> str | None:
    if not raw:
        return None
    if len(raw) > MAX_QUERY_LENGTH or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise InvalidInput(
            f"q must be at most {MAX_QUERY_LENGTH} characters without control characters", code="q_invalid", field="q"
        )
    return raw


def parse_list_query(params: Mapping[str, str], *, workspace: str) -> ListQuery:
    """`q`, `tag`, `cursor`, `limit` (other parameters are ignored); 422 with a stable code each."""
    tag = params.get("tag")
    cursor = params.get("cursor")
    return ListQuery(
        workspace=workspace,
        q=_query(params.get("q")),
        tag=validate_tag(tag, field="tag") if tag else None,
        after=decode_cursor(cursor) if cursor else None,
        limit=_limit(params.get("limit")),
    )


def like_pattern(q: str) -> str:
    """`q` as an ILIKE pattern matching it anywhere, its own % _ and \\ taken literally."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
