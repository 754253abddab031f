"""The PostgreSQL adapters of LinkStore (asyncpg, the default, and SQLAlchemy, the previous one):
a link row and its event commit together or not at all."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from contracts import links as links_contract
from contracts.links import LinkEvent
from shorten.adapters import asyncpg_store
from shorten.adapters.asyncpg_store import AsyncpgLinkStore
from shorten.adapters.postgres import PostgresLinkStore, create_engine, links, outbox
from shorten.domain.errors import AliasTaken, LinkNotFound, StoreUnavailable
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
from shorten.ports import LinkStore
from shorten.service_layer.link_service import LinkService, new_event_id
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect

from tests.conftest import wait_until_async
from tests.integration.shorten.support import POSTGRES_DSN, link_row, outbox_rows, unique_alias

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Adapter:
    store: LinkStore
    # What a statement the database refuses (a duplicate event id: a bug, not a client error) raises.
    refused: type[Exception]


@pytest.fixture(params=["asyncpg", "asyncpg-one-statement-per-create", "sqlalchemy"])
async def adapter(request: pytest.FixtureRequest) -> AsyncIterator[Adapter]:
    if request.param.startswith("asyncpg"):
        batches_in_flight = 0 if request.param == "asyncpg-one-statement-per-create" else 2
        async with AsyncpgLinkStore.open(
            POSTGRES_DSN, max_size=2, application_name="shorten-test", batches_in_flight=batches_in_flight
        ) as store:
            yield Adapter(store, asyncpg.UniqueViolationError)
    else:
        engine = create_engine(POSTGRES_DSN, pool_size=2, application_name="shorten-test")
        yield Adapter(PostgresLinkStore(engine), sa_exc.IntegrityError)
        await engine.dispose()


def a_link(code: str, **fields: object) -> Link:
    return new_link(CreateLink(url="https://store.example/", **fields), code=code, now=datetime.now(UTC))  # type: ignore[arg-type]


async def test_insert_writes_the_row_and_its_event(adapter: Adapter) -> None:
    expires = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    link = a_link(unique_alias("row"), redirect_type=301, expires_at=expires, max_clicks=7)
    event = link_created(link, event_id=new_event_id())
    assert await adapter.store.insert(link, event)

    assert await adapter.store.get(link.code, workspace="default") == link
    row = await link_row(link.code)
    assert row is not None and row["deleted_at"] is None
    [record] = await outbox_rows([link.code])
    assert record["event_id"] == event.event_id
    assert record["event_type"] == "LinkCreated"
    assert record["code"] == link.code
    assert links_contract.decode(record["payload"]) == event


async def test_insert_is_atomic_a_failed_event_write_leaves_no_link(adapter: Adapter) -> None:
    first = a_link(unique_alias("atom"))
    event = link_created(first, event_id=new_event_id())
    assert await adapter.store.insert(first, event)

    second = a_link(unique_alias("atom"))
    reused_id = link_created(second, event_id=event.event_id)  # the outbox refuses a duplicate event id
    with pytest.raises(adapter.refused):
        await adapter.store.insert(second, reused_id)
    assert await adapter.store.get(second.code, workspace="default") is None
    assert await outbox_rows([second.code]) == []


async def test_insert_of_an_existing_code_writes_nothing(adapter: Adapter) -> None:
    link = a_link(unique_alias("dup"))
    assert await adapter.store.insert(link, link_created(link, event_id=new_event_id()))
    again = new_link(CreateLink(url="https://other.example/"), code=link.code, now=datetime.now(UTC))
    assert await adapter.store.insert(again, link_created(again, event_id=new_event_id())) is False
    stored = await adapter.store.get(link.code, workspace="default")
    assert stored is not None and stored.url == "https://store.example/"
    assert len(await outbox_rows([link.code])) == 1


async def test_a_taken_alias_is_alias_taken_through_the_service(adapter: Adapter) -> None:
    service = LinkService(store=adapter.store)
    alias = unique_alias("taken")
    await service.create(CreateLink(url="https://first.example/", alias=alias))
    with pytest.raises(AliasTaken):
        await service.create(CreateLink(url="https://second.example/", alias=alias))
    assert [r["event_type"] for r in await outbox_rows([alias])] == ["LinkCreated"]


async def test_modify_writes_the_new_state_and_its_event(adapter: Adapter) -> None:
    link = a_link(unique_alias("upd"), max_clicks=3)
    assert await adapter.store.insert(link, link_created(link, event_id=new_event_id()))
    events: list[LinkEvent] = []

    def change(current: Link) -> tuple[Link, LinkEvent]:
        changed = apply_changes(
            current, LinkChanges(url="https://changed.example/", max_clicks=None), now=datetime.now(UTC)
        )
        events.append(link_updated(changed, event_id=new_event_id()))
        return changed, events[-1]

    updated = await adapter.store.modify(link.code, change, workspace="default")
    assert updated.url == "https://changed.example/" and updated.max_clicks is None
    assert await adapter.store.get(link.code, workspace="default") == updated

    def delete(current: Link) -> tuple[Link, LinkEvent]:
        deleted = mark_deleted(current, now=datetime.now(UTC))
        events.append(link_deleted(deleted, event_id=new_event_id()))
        return deleted, events[-1]

    deleted = await adapter.store.modify(link.code, delete, workspace="default")
    stored = await adapter.store.get(link.code, workspace="default")
    assert stored == deleted and stored is not None and stored.is_deleted
    rows = await outbox_rows([link.code])
    assert [r["event_type"] for r in rows] == ["LinkCreated", "LinkUpdated", "LinkDeleted"]
    assert [links_contract.decode(r["payload"]) for r in rows[1:]] == events


async def test_modify_is_atomic_a_failed_event_write_keeps_the_old_row(adapter: Adapter) -> None:
    link = a_link(unique_alias("mod"))
    created = link_created(link, event_id=new_event_id())
    assert await adapter.store.insert(link, created)

    def change(current: Link) -> tuple[Link, LinkEvent]:
        changed = apply_changes(current, LinkChanges(url="https://changed.example/"), now=datetime.now(UTC))
        return changed, link_updated(changed, event_id=created.event_id)  # duplicate id: the write fails

    with pytest.raises(adapter.refused):
        await adapter.store.modify(link.code, change, workspace="default")
    stored = await adapter.store.get(link.code, workspace="default")
    assert stored is not None and stored.url == "https://store.example/"
    assert [r["event_type"] for r in await outbox_rows([link.code])] == ["LinkCreated"]


async def test_modify_of_an_unknown_code_is_not_found_and_writes_nothing(adapter: Adapter) -> None:
    code = unique_alias("none")

    def change(current: Link) -> tuple[Link, LinkEvent]:
        raise AssertionError("change must not run for an unknown code")

    with pytest.raises(LinkNotFound):
        await adapter.store.modify(code, change, workspace="default")
    assert await outbox_rows([code]) == []


async def test_an_unreachable_database_is_store_unavailable() -> None:
    """Nothing listens on port 1: every call is StoreUnavailable (503), not a crash (500)."""
    dsn = POSTGRES_DSN.rsplit("@", 1)[0] + "@127.0.0.1:1/shortlink"
    async with AsyncpgLinkStore.open(dsn, max_size=1) as store:
        link = a_link(unique_alias("down"))
        with pytest.raises(StoreUnavailable):
            await store.insert(link, link_created(link, event_id=new_event_id()))
        with pytest.raises(StoreUnavailable):
            await store.get(link.code, workspace="default")
        with pytest.raises(StoreUnavailable):
            await store.ping()


async def test_released_connections_keep_no_reset_round_trip() -> None:
    """The pool's reset does not run asyncpg's default RESET ALL query on each release."""
    async with AsyncpgLinkStore.open(POSTGRES_DSN, max_size=1, application_name="shorten-reset-test") as store:
        await store.ping()
        await store.ping()
        conn = await asyncpg.connect(POSTGRES_DSN)
        try:
            last = await conn.fetchval(
                "SELECT query FROM pg_stat_activity WHERE application_name = 'shorten-reset-test'"
            )
        finally:
            await conn.close()
    assert last == "SELECT 1"


async def test_tables_match_the_migration() -> None:
    engine = create_engine(POSTGRES_DSN, pool_size=1, application_name="shorten-test")
    try:
        async with engine.connect() as conn:

            def columns(sync_conn: object, table: str) -> set[str]:
                return {c["name"] for c in inspect(sync_conn).get_columns(table, schema="shorten")}

            for table in (links, outbox):
                assert await conn.run_sync(columns, table.name) == {c.name for c in table.columns}
    finally:
        await engine.dispose()


def max_clicks_9(current: Link) -> tuple[Link, LinkEvent]:
    """A change for `modify`: max_clicks set to 9, with its event."""
    changed = apply_changes(current, LinkChanges(max_clicks=9), now=datetime.now(UTC))
    return changed, link_updated(changed, event_id=new_event_id())


async def test_a_request_waits_for_a_pooled_connection_a_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """All of the process's connections busy: a request answers 503 after ACQUIRE_TIMEOUT_S
    instead of queueing without end."""
    monkeypatch.setattr(asyncpg_store, "ACQUIRE_TIMEOUT_S", 0.3)
    link = a_link(unique_alias("busy"))
    locker = await asyncpg.connect(POSTGRES_DSN)
    try:
        async with AsyncpgLinkStore.open(POSTGRES_DSN, max_size=1, application_name="shorten-busy-test") as store:
            assert await store.insert(link, link_created(link, event_id=new_event_id()))
            async with locker.transaction():
                await locker.execute("SELECT 1 FROM shorten.links WHERE code = $1 FOR UPDATE", link.code)

                # Holds the only pooled connection, waiting for the row lock.
                blocked = asyncio.create_task(store.modify(link.code, max_clicks_9, workspace="default"))

                async def waiting_for_the_lock() -> bool:
                    return bool(
                        await locker.fetchval(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE application_name = 'shorten-busy-test' AND wait_event_type = 'Lock'"
                        )
                    )

                await wait_until_async(waiting_for_the_lock, timeout=5, what="modify to wait for the row lock")
                with pytest.raises(StoreUnavailable):
                    await store.get(link.code, workspace="default")
            assert (await blocked).max_clicks == 9  # the lock released, the write went through
    finally:
        await locker.close()


async def test_a_request_blocked_in_postgresql_gets_503_at_its_deadline_and_the_row_is_unchanged() -> None:
    """A request stuck in PostgreSQL (here a row lock held by another session; in the cluster,
    PgBouncer's queue while the primary is down) fails as StoreUnavailable (503 with Retry-After)
    at the store's deadline, below the clients' own timeouts, and leaves nothing half-done."""
    link = a_link(unique_alias("late"))
    locker = await asyncpg.connect(POSTGRES_DSN)
    try:
        async with AsyncpgLinkStore.open(
            POSTGRES_DSN, application_name="shorten-deadline-test", deadline_s=0.5
        ) as store:
            assert await store.insert(link, link_created(link, event_id=new_event_id()))
            async with locker.transaction():
                await locker.execute("SELECT 1 FROM shorten.links WHERE code = $1 FOR UPDATE", link.code)

                started = asyncio.get_running_loop().time()
                with pytest.raises(StoreUnavailable):
                    await store.modify(link.code, max_clicks_9, workspace="default")
                took = asyncio.get_running_loop().time() - started
                assert 0.5 <= took < 2.0, took
            # The lock released: the abandoned transaction left nothing, the store serves again.
            stored = await store.get(link.code, workspace="default")
            assert stored is not None and stored.max_clicks is None
            assert len(await outbox_rows([link.code])) == 1  # the create's event only
    finally:
        await locker.close()


async def test_concurrent_creates_are_group_committed_each_with_its_own_answer() -> None:
    """Creates that arrive while a statement runs go together as one statement (fewer
    statements than creates), and every caller still gets its own answer: each free code is
    inserted with exactly its one event, a code taken earlier in the same batch is refused
    (False, nothing written), and a row the database refuses (a reused event id) fails only
    its own create, not the others of its batch."""
    async with AsyncpgLinkStore.open(
        POSTGRES_DSN, max_size=2, application_name="shorten-batch-test", batches_in_flight=1
    ) as store:
        fresh = [a_link(unique_alias("grp")) for _ in range(30)]
        events = [link_created(link, event_id=new_event_id()) for link in fresh]
        twin = new_link(CreateLink(url="https://twin.example/"), code=fresh[3].code, now=datetime.now(UTC))
        reuser = a_link(unique_alias("grp"))
        calls = [store.insert(link, event) for link, event in zip(fresh, events, strict=True)]
        calls.insert(10, store.insert(twin, link_created(twin, event_id=new_event_id())))
        calls.insert(20, store.insert(reuser, link_created(reuser, event_id=events[0].event_id)))
        answers = await asyncio.gather(*calls, return_exceptions=True)

        assert store.batches < len(calls)
        reused = answers.pop(20)
        assert isinstance(reused, asyncpg.UniqueViolationError)
        assert answers.pop(10) is False
        assert answers == [True] * len(fresh)
        assert await store.get(reuser.code, workspace="default") is None
        stored = await store.get(fresh[3].code, workspace="default")
        assert stored is not None and stored.url == "https://store.example/"
        rows = await outbox_rows([link.code for link in [*fresh, reuser]])
        assert sorted(r["event_id"] for r in rows) == sorted(e.event_id for e in events)


async def test_a_create_cancelled_before_its_batch_leaves_is_not_written() -> None:
    """The request went away (client disconnected) while its create waited for a batch: it is
    left out, and the creates after it are written as usual."""
    async with AsyncpgLinkStore.open(POSTGRES_DSN, max_size=1, application_name="shorten-cancel-test") as store:
        gone = a_link(unique_alias("gone"))
        waiting = asyncio.create_task(store.insert(gone, link_created(gone, event_id=new_event_id())))
        await asyncio.sleep(0)  # one loop turn: the create is queued, its batch not yet sent
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        after = a_link(unique_alias("after"))
        assert await store.insert(after, link_created(after, event_id=new_event_id()))
        assert await store.get(gone.code, workspace="default") is None
        assert await outbox_rows([gone.code]) == []


async def test_a_page_is_the_workspaces_live_links_after_the_cursor(adapter: Adapter) -> None:
    from shorten.domain.listing import ListQuery, Position

    workspace = f"store-{new_event_id()[-8:]}"
    start = datetime.now(UTC)
    made = []
    for i in range(5):
        link = new_link(
            CreateLink(url=f"https://page.example/{i}", workspace=workspace, tags=("t", f"n{i}")),
            code=unique_alias("pg"),
            now=start + timedelta(milliseconds=i),
        )
        assert await adapter.store.insert(link, link_created(link, event_id=new_event_id()))
        made.append(link)
    other = a_link(unique_alias("pg-other"))  # another workspace's
    assert await adapter.store.insert(other, link_created(other, event_id=new_event_id()))
    newest_first = list(reversed(made))

    assert await adapter.store.page(ListQuery(workspace=workspace, limit=10)) == newest_first
    after = Position(newest_first[1].created_at, newest_first[1].code)
    assert await adapter.store.page(ListQuery(workspace=workspace, after=after, limit=2)) == newest_first[2:4]
    assert await adapter.store.page(ListQuery(workspace=workspace, tag="n3")) == [made[3]]
    assert await adapter.store.page(ListQuery(workspace=workspace, q="PAGE.EXAMPLE/4")) == [made[4]]
    assert await adapter.store.page(ListQuery(workspace=workspace, q=made[0].code.upper())) == [made[0]]


async def test_insert_many_writes_each_link_with_its_event_and_reports_taken_codes(adapter: Adapter) -> None:
    taken = a_link(unique_alias("many"))
    assert await adapter.store.insert(taken, link_created(taken, event_id=new_event_id()))
    fresh = [a_link(unique_alias("many")) for _ in range(5)]
    repeated = new_link(CreateLink(url="https://again.example/"), code=fresh[0].code, now=datetime.now(UTC))
    rows = [*fresh[:3], taken, repeated, *fresh[3:]]
    inserted = await adapter.store.insert_many([(link, link_created(link, event_id=new_event_id())) for link in rows])
    # the taken code and the code repeated within the rows (its first occurrence wins) write nothing
    assert list(inserted) == [True, True, True, False, False, True, True]
    records = await outbox_rows([link.code for link in fresh])
    assert sorted(r["code"] for r in records) == sorted(link.code for link in fresh)  # one event per link
    assert [r["event_type"] for r in records] == ["LinkCreated"] * 5
    found = await adapter.store.find([taken.code, fresh[0].code, "no-such-code"], workspace="default")
    assert {link.code: link.url for link in found} == {taken.code: taken.url, fresh[0].code: fresh[0].url}
    assert await adapter.store.find([taken.code], workspace="another") == []
