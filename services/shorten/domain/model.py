"""The link and the changes a request may make to it; the events each change produces."""

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from contracts.links import DEFAULT_WORKSPACE, LinkCreated, LinkDeleted, LinkUpdated

from shorten.domain.errors import LinkGone
from shorten.domain.validation import RedirectType


class Unset(enum.Enum):
    """Marks a PATCH field the request did not mention (distinct from an explicit null)."""

    UNSET = "UNSET"


UNSET: Literal[Unset.UNSET] = Unset.UNSET


@dataclass(frozen=True, kw_only=True)
class Link:
    code: str
    url: str
    redirect_type: RedirectType
    expires_at: datetime | None
    max_clicks: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    workspace: str = DEFAULT_WORKSPACE  # the owner: only its keys see, change or delete the link
    public_stats: bool = False  # anyone may read the link's stats
    tags: tuple[str, ...] = ()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, kw_only=True)
class CreateLink:
    """Command: create a link under `alias`, or under a generated code when alias is None."""

    url: str
    alias: str | None = None
    redirect_type: RedirectType = 302
    expires_at: datetime | None = None
    max_clicks: int | None = None
    workspace: str = DEFAULT_WORKSPACE  # the caller's (from its key), never from the body
    public_stats: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LinkChanges:
    """Command payload of PATCH. None for url/redirect_type means unchanged (they cannot be
    cleared); expires_at/max_clicks may be cleared with null, UNSET means unchanged."""

    url: str | None = None
    redirect_type: RedirectType | None = None
    expires_at: datetime | Literal[Unset.UNSET] | None = UNSET
    max_clicks: int | Literal[Unset.UNSET] | None = UNSET
    public_stats: bool | None = None
    tags: tuple[str, ...] | None = None  # None: unchanged; () clears


def new_link(cmd: CreateLink, *, code: str, now: datetime) -> Link:
    return Link(
        code=code,
        url=cmd.url,
        redirect_type=cmd.redirect_type,
        expires_at=cmd.expires_at,
        max_clicks=cmd.max_clicks,
        created_at=now,
        updated_at=now,
        workspace=cmd.workspace,
        public_stats=cmd.public_stats,
        tags=cmd.tags,
    )


def apply_changes(link: Link, changes: LinkChanges, *, now: datetime) -> Link:
    if link.is_deleted:
        raise LinkGone(f"link {link.code!r} was deleted", field="code")
    return replace(
        link,
        url=changes.url if changes.url is not None else link.url,
        redirect_type=changes.redirect_type if changes.redirect_type is not None else link.redirect_type,
        expires_at=link.expires_at if changes.expires_at is UNSET else changes.expires_at,
        max_clicks=link.max_clicks if changes.max_clicks is UNSET else changes.max_clicks,
        public_stats=link.public_stats if changes.public_stats is None else changes.public_stats,
        tags=link.tags if changes.tags is None else changes.tags,
        updated_at=now,
    )


def mark_deleted(link: Link, *, now: datetime) -> Link:
    if link.is_deleted:
        raise LinkGone(f"link {link.code!r} was deleted", field="code")
    return replace(link, deleted_at=now, updated_at=now)


def link_created(link: Link, *, event_id: str) -> LinkCreated:
    return LinkCreated(
        event_id=event_id,
        occurred_at=link.created_at,
        code=link.code,
        url=link.url,
        redirect_type=link.redirect_type,
        expires_at=link.expires_at,
        max_clicks=link.max_clicks,
        workspace=link.workspace,
        public_stats=link.public_stats,
        tags=link.tags,
    )


def link_updated(link: Link, *, event_id: str) -> LinkUpdated:
    """Carries the full new state, so the compacted `links` topic stays self-contained."""
    return LinkUpdated(
        event_id=event_id,
        occurred_at=link.updated_at,
        code=link.code,
        url=link.url,
        redirect_type=link.redirect_type,
        expires_at=link.expires_at,
        max_clicks=link.max_clicks,
        workspace=link.workspace,
        public_stats=link.public_stats,
        tags=link.tags,
    )


def link_deleted(link: Link, *, event_id: str) -> LinkDeleted:
    assert link.deleted_at is not None
    return LinkDeleted(event_id=event_id, occurred_at=link.deleted_at, code=link.code, workspace=link.workspace)
