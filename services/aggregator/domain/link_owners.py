"""`links` events as rows of ClickHouse's link_workspaces (who owns a link, its tags). Pure."""

from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec
from contracts.links import LinkDeleted, LinkEvent


class LinkOwnerRow(msgspec.Struct, frozen=True, kw_only=True):
    """One row of link_workspaces; `version` orders a link's rows (newest wins)."""

    workspace: str
    code: str
    tags: tuple[str, ...]
    deleted: int
    version: int


def version_of(moment: datetime) -> int:
    """Microseconds since the epoch: the event's time as ReplacingMergeTree's version."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def owner_rows(events: Iterable[LinkEvent]) -> list[LinkOwnerRow]:
    """A deleted link keeps its owner (its stats stay theirs) and leaves /top (deleted = 1)."""
    return [
        LinkOwnerRow(
            workspace=e.workspace,
            code=e.code,
            tags=() if isinstance(e, LinkDeleted) else e.tags,
            deleted=int(isinstance(e, LinkDeleted)),
            version=version_of(e.occurred_at),
        )
        for e in events
    ]
