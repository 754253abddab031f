"""The redirect read model: one `Link` per code, built from the `links` topic.

A `Link` carries the partition offset of the event it came from: offsets order the versions
of one code (a code always lands on the same partition, its key is the code), so "newer"
is "larger offset" everywhere (Redis, L1). `NOT_FOUND` (offset -1) is the answer for a code
no event has named yet; any real version beats it.

Response header bytes are computed once per version here, not per request.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from contracts.links import CODE_RE, LinkDeleted, LinkEvent

# Codes are base62 (generated) or aliases [A-Za-z0-9_-]{3,64}; anything else cannot exist.
MAX_CODE_LENGTH = 64
# The Location header carries the URL verbatim: shorten stores printable ASCII only
# (non-ASCII is percent-encoded); anything else on the topic is refused as poison.
MAX_URL_LENGTH = 8192
_URL = re.compile(r"[\x21-\x7e]{1,8192}")

PRIVATE_NO_CACHE = b"private, no-cache"
NO_STORE = b"no-store"


def is_valid_code(code: str) -> bool:
    """Cheap shape check done before any lookup: bad characters or length -> 404 at once."""
    return len(code) <= MAX_CODE_LENGTH and CODE_RE.fullmatch(code) is not None


class InvalidLinkEvent(ValueError):
    """A well-formed event whose content cannot be served (poison: goes to the dead-letter topic)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """One version of a link as the redirect service serves it."""

    offset: int
    url: str = ""
    redirect_type: int = 302
    expires_at: float | None = None  # epoch seconds, UTC
    max_clicks: int | None = None
    deleted: bool = False
    exists: bool = True
    # Precomputed response headers (None: must be computed per request, see cache_control).
    headers: tuple[tuple[bytes, bytes], ...] | None = field(default=None, compare=False)

    def status_at(self, now: float) -> int:
        """HTTP status for a request at `now` (epoch seconds), before any click limit."""
        if not self.exists:
            return 404
        if self.deleted or (self.expires_at is not None and now >= self.expires_at):
            return 410
        return self.redirect_type

    def gone_reason(self, now: float) -> str:
        if self.deleted:
            return "link_deleted"
        if self.expires_at is not None and now >= self.expires_at:
            return "link_expired"
        return "link_click_limit_reached"


NOT_FOUND = Link(offset=-1, exists=False)


def cache_control(link: Link, now: float, *, permanent_max_age: int) -> bytes:
    """Cache-Control for a served redirect.

    302: `private, no-cache` (every click reaches us: counted, and deletes/updates obeyed).
    301: `public, max-age=permanent_max_age` -- a cached 301 is neither counted nor recalled
    (documented trade-off); capped at the time left before `expires_at`, and never cached at
    all when the link has `max_clicks` (each click must be counted to enforce the limit).
    """
    if link.redirect_type != 301 or link.max_clicks is not None:
        return PRIVATE_NO_CACHE
    max_age = permanent_max_age
    if link.expires_at is not None:
        max_age = max(0, min(max_age, int(link.expires_at - now)))
    return b"public, max-age=%d" % max_age


def redirect_headers(link: Link, cache: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"location", link.url.encode("ascii")), (b"cache-control", cache), (b"content-length", b"0"))


def with_headers(link: Link, *, permanent_max_age: int) -> Link:
    """The same version with its response headers precomputed, when they do not depend on time."""
    if not link.exists or link.deleted or (link.redirect_type == 301 and link.expires_at is not None):
        return link
    cache = cache_control(link, 0.0, permanent_max_age=permanent_max_age)
    return Link(
        offset=link.offset,
        url=link.url,
        redirect_type=link.redirect_type,
        expires_at=link.expires_at,
        max_clicks=link.max_clicks,
        headers=redirect_headers(link, cache),
    )


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:  # the contract means UTC; a naive timestamp is read as UTC
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def link_from_event(event: LinkEvent, offset: int) -> Link:
    """Pure projection of one `links` event at `offset`. Raises InvalidLinkEvent for content
    that cannot be served (a code that cannot be requested, a URL unfit for a header)."""
    if not is_valid_code(event.code):
        raise InvalidLinkEvent(f"links: code {event.code[:80]!r} is not a valid short code")
    if isinstance(event, LinkDeleted):
        return Link(offset=offset, deleted=True)
    if not _URL.fullmatch(event.url):
        raise InvalidLinkEvent("links: url is empty, too long or not printable ASCII")
    if event.max_clicks is not None and event.max_clicks < 1:
        raise InvalidLinkEvent(f"links: max_clicks must be >= 1, got {event.max_clicks}")
    return Link(
        offset=offset,
        url=event.url,
        redirect_type=event.redirect_type,
        expires_at=_epoch(event.expires_at),
        max_clicks=event.max_clicks,
    )
