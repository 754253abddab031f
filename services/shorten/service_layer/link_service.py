"""Use cases of the links API. Each takes a command, talks to the LinkStore port, returns a Link."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import uuid_utils
from contracts.links import LinkEvent

from shorten.domain.codes import DEFAULT_LENGTH, generate_code
from shorten.domain.errors import AliasTaken, CodeSpaceExhausted, LinkGone, LinkNotFound
from shorten.domain.listing import ListQuery, Position, encode_cursor
from shorten.domain.model import (
    CreateLink,
    Link,
    LinkChanges,
    apply_changes,
    link_created,
    link_deleted,
    link_updated,
    mark_deleted,
    new_link,
)
from shorten.ports import LinkStore, WriteVisibility
from shorten.service_layer.visibility import NoWait

log = logging.getLogger(__name__)

MAX_CODE_ATTEMPTS = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    """UUIDv7: time-ordered, created once when the outbox row is written, never again."""
    return str(uuid_utils.uuid7())


class LinkService:
    def __init__(
        self,
        *,
        store: LinkStore,
        code_length: int = DEFAULT_LENGTH,
        clock: Callable[[], datetime] = utcnow,
        event_ids: Callable[[], str] = new_event_id,
        codes: Callable[[int], str] = generate_code,
        visibility: WriteVisibility | None = None,
    ) -> None:
        self._store = store
        self._code_length = code_length
        self._clock = clock
        self._event_ids = event_ids
        self._codes = codes
        # Every write is answered once it is served (read your writes), bounded; see visibility.py.
        self._visibility: WriteVisibility = visibility if visibility is not None else NoWait()

    def now(self) -> datetime:
        return self._clock()

    async def create(self, cmd: CreateLink) -> Link:
        """Store under the alias (409 if ever used) or a fresh random code (retry on collision)."""
        for _ in range(MAX_CODE_ATTEMPTS):
            code = cmd.alias if cmd.alias is not None else self._codes(self._code_length)
            link = new_link(cmd, code=code, now=self._clock())
            event = link_created(link, event_id=self._event_ids())
            if await self._store.insert(link, event):
                await self._visibility.wait(event.event_id)
                return link
            if cmd.alias is not None:
                raise AliasTaken(f"alias {cmd.alias!r} is taken", field="alias")
            log.warning("generated code collided, retrying with a new one")
        raise CodeSpaceExhausted(f"no free code after {MAX_CODE_ATTEMPTS} attempts")

    async def get(self, code: str, *, workspace: str) -> Link:
        link = await self._store.get(code, workspace=workspace)
        if link is None:
            raise LinkNotFound(f"no link {code!r}", field="code")
        if link.is_deleted:
            raise LinkGone(f"link {code!r} was deleted", field="code")
        return link

    async def page(self, query: ListQuery) -> tuple[Sequence[Link], str | None]:
        """One page of the workspace's links and the cursor of the next (None: this was the last)."""
        links = await self._store.page(replace(query, limit=query.limit + 1))
        if len(links) <= query.limit:
            return links, None
        last = links[query.limit - 1]
        return links[: query.limit], encode_cursor(Position(last.created_at, last.code))

    async def update(self, code: str, changes: LinkChanges, *, workspace: str) -> Link:
        events: list[LinkEvent] = []

        def change(link: Link) -> tuple[Link, LinkEvent]:
            updated = apply_changes(link, changes, now=self._clock())
            events.append(link_updated(updated, event_id=self._event_ids()))
            return updated, events[-1]

        link = await self._store.modify(code, change, workspace=workspace)
        await self._visibility.wait(events[-1].event_id)
        return link

    async def delete(self, code: str, *, workspace: str) -> None:
        events: list[LinkEvent] = []

        def change(link: Link) -> tuple[Link, LinkEvent]:
            deleted = mark_deleted(link, now=self._clock())
            events.append(link_deleted(deleted, event_id=self._event_ids()))
            return deleted, events[-1]

        await self._store.modify(code, change, workspace=workspace)
        await self._visibility.wait(events[-1].event_id)
