"""The PostgreSQL adapter: a link row and its event commit together or not at all."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from contracts.links import LinkEvent
from shorten.adapters.postgres import PostgresLinkStore, create_engine, links, outbox
from shorten.domain.model import CreateLink, Link, LinkChanges, apply_changes, link_created, link_updated, new_link
from shorten.service import new_event_id
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.shorten.support import POSTGRES_DSN, outbox_rows, unique_alias

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_engine(POSTGRES_DSN, pool_size=2, application_name="shorten-test")
    yield engine
    await engine.dispose()


def a_link(code: str) -> Link:
    return new_link(CreateLink(url="https://store.example/"), code=code, now=datetime.now(UTC))


async def test_insert_is_atomic_a_failed_event_write_leaves_no_link(engine: AsyncEngine) -> None:
    store = PostgresLinkStore(engine)
    first = a_link(unique_alias("atom"))
    event = link_created(first, event_id=new_event_id())
    assert await store.insert(first, event)

    second = a_link(unique_alias("atom"))
    reused_id = link_created(second, event_id=event.event_id)  # the outbox refuses a duplicate event id
    with pytest.raises(sa_exc.IntegrityError):
        await store.insert(second, reused_id)
    assert await store.get(second.code) is None
    assert await outbox_rows([second.code]) == []


async def test_insert_of_an_existing_code_writes_nothing(engine: AsyncEngine) -> None:
    store = PostgresLinkStore(engine)
    link = a_link(unique_alias("dup"))
    assert await store.insert(link, link_created(link, event_id=new_event_id()))
    again = new_link(CreateLink(url="https://other.example/"), code=link.code, now=datetime.now(UTC))
    assert await store.insert(again, link_created(again, event_id=new_event_id())) is False
    stored = await store.get(link.code)
    assert stored is not None and stored.url == "https://store.example/"
    assert len(await outbox_rows([link.code])) == 1


async def test_modify_is_atomic_a_failed_event_write_keeps_the_old_row(engine: AsyncEngine) -> None:
    store = PostgresLinkStore(engine)
    link = a_link(unique_alias("mod"))
    created = link_created(link, event_id=new_event_id())
    assert await store.insert(link, created)

    def change(current: Link) -> tuple[Link, LinkEvent]:
        changed = apply_changes(current, LinkChanges(url="https://changed.example/"), now=datetime.now(UTC))
        return changed, link_updated(changed, event_id=created.event_id)  # duplicate id: the write fails

    with pytest.raises(sa_exc.IntegrityError):
        await store.modify(link.code, change)
    stored = await store.get(link.code)
    assert stored is not None and stored.url == "https://store.example/"
    assert [r["event_type"] for r in await outbox_rows([link.code])] == ["LinkCreated"]


async def test_tables_match_the_migration(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:

        def columns(sync_conn: object, table: str) -> set[str]:
            return {c["name"] for c in inspect(sync_conn).get_columns(table, schema="shorten")}

        for table in (links, outbox):
            assert await conn.run_sync(columns, table.name) == {c.name for c in table.columns}
