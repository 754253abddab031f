"""What the links API answers with: msgspec Structs, encoded by msgspec (the request bodies are
decoded by it too) and the source of the OpenAPI schemas of the responses."""

from datetime import datetime
from typing import Literal

import msgspec

from shorten.domain.model import Link


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
