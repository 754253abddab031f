"""PostgreSQL adapter on asyncpg directly: the links API's write path in one round trip.

Same port and the same transactional-outbox guarantee as adapters/postgres.py (SQLAlchemy),
without its per-request costs: no pre-ping on checkout, no statement compilation, no greenlet
hops, and no reset query when a connection goes back to the pool. Statements are plain SQL,
prepared once per connection by asyncpg's statement cache.

A create is ONE statement: a data-modifying CTE inserts the link (ON CONFLICT DO NOTHING) and
the outbox row only for a link it inserted. A single statement is a single implicit
transaction, so both rows commit or neither does; a taken code inserts nothing and returns no
row. Updates lock the row (SELECT ... FOR UPDATE) in an explicit transaction, because the new
state is computed in Python from the locked one.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import asyncpg
from contracts import links as links_contract
from contracts.links import LinkCreated, LinkEvent
from telemetry import tracing

from shorten.domain.errors import LinkNotFound, StoreUnavailable
from shorten.domain.model import Link
from shorten.domain.validation import RedirectType
from shorten.ports import Change

_LINK_COLUMNS = "code, url, redirect_type, expires_at, max_clicks, created_at, updated_at, deleted_at"

# $1..$8 the link, $9..$12 its event. The casts type the parameters of the SELECT list (an
# INSERT ... SELECT does not infer them from the target columns).
INSERT_LINK_AND_EVENT = f"""
WITH link AS (
    INSERT INTO shorten.links ({_LINK_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (code) DO NOTHING
    RETURNING code
)
INSERT INTO shorten.outbox (event_id, event_type, code, payload, traceparent)
SELECT $9::uuid, $10::text, link.code, $11::bytea, $12::text FROM link
RETURNING id
"""

SELECT_LINK = f"SELECT {_LINK_COLUMNS} FROM shorten.links WHERE code = $1"
SELECT_LINK_FOR_UPDATE = SELECT_LINK + " FOR UPDATE"

# $1 the code, $2..$7 the new state, $8..$11 the event.
UPDATE_LINK_AND_EVENT = """
WITH link AS (
    UPDATE shorten.links
    SET url = $2, redirect_type = $3, expires_at = $4, max_clicks = $5, updated_at = $6, deleted_at = $7
    WHERE code = $1
    RETURNING code
)
INSERT INTO shorten.outbox (event_id, event_type, code, payload, traceparent)
SELECT $8::uuid, $9::text, link.code, $10::bytea, $11::text FROM link
RETURNING id
"""

# How long a request waits for a free pooled connection before answering 503 (all of this
# process's SHORTEN_DB_POOL_SIZE connections busy: PostgreSQL is slow or the process overloaded).
ACQUIRE_TIMEOUT_S = 5.0

# Connection-level failures: the store is unreachable (503), not a bug in the statement.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A pooled connection PostgreSQL dropped (server stopped) can fail its next BEGIN with
    # "cannot switch to state ...; another operation is in progress": the link is gone, nothing
    # was written. Seen under load with PostgreSQL stopped (tests/e2e/test_chaos.py).
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    OSError,
    TimeoutError,
)


@contextmanager
def translate_errors() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable("the link store is unavailable") from exc


async def _reset(conn: asyncpg.Connection) -> None:
    """On release, after asyncpg rolled back an abandoned transaction (a cancelled request).
    asyncpg's default would also run `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`: a round trip on EVERY release. This store never sets session state (no SET,
    LISTEN, advisory lock or cursor), so there is nothing else to undo."""


async def create_pool(dsn: str, *, max_size: int = 10, application_name: str = "shorten") -> asyncpg.Pool:
    """A pool that connects on demand (min_size=0: the service starts while PostgreSQL is away,
    /readyz says so) and keeps up to `max_size` connections open for reuse."""
    return await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        max_inactive_connection_lifetime=300.0,
        timeout=5,
        command_timeout=15,
        reset=_reset,
        server_settings={"application_name": application_name},
    )


def _link_args(link: Link) -> tuple[Any, ...]:
    """The mutable columns, in UPDATE_LINK_AND_EVENT's order ($2..$7)."""
    return (link.url, link.redirect_type, link.expires_at, link.max_clicks, link.updated_at, link.deleted_at)


def _event_args(event: LinkEvent) -> tuple[Any, ...]:
    # The current trace (the API request's span), continued by the relay; None when off.
    return (event.event_id, type(event).__name__, links_contract.encode(event), tracing.traceparent())


def _to_link(row: asyncpg.Record) -> Link:
    return Link(
        code=row["code"],
        url=row["url"],
        redirect_type=cast(RedirectType, row["redirect_type"]),
        expires_at=row["expires_at"],
        max_clicks=row["max_clicks"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


class AsyncpgLinkStore:
    """LinkStore on an asyncpg pool. Concurrent inserts of one code: the primary key decides,
    ON CONFLICT DO NOTHING makes every loser insert nothing (no outbox row either)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    @asynccontextmanager
    async def open(
        cls, dsn: str, *, max_size: int = 10, application_name: str = "shorten"
    ) -> AsyncIterator["AsyncpgLinkStore"]:
        pool = await create_pool(dsn, max_size=max_size, application_name=application_name)
        try:
            yield cls(pool)
        finally:
            await pool.close()

    async def insert(self, link: Link, event: LinkCreated) -> bool:
        with translate_errors():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                outbox_id = await conn.fetchval(
                    INSERT_LINK_AND_EVENT,
                    link.code, link.url, link.redirect_type, link.expires_at, link.max_clicks,
                    link.created_at, link.updated_at, link.deleted_at,
                    *_event_args(event),
                )
        return outbox_id is not None

    async def get(self, code: str) -> Link | None:
        with translate_errors():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                row = await conn.fetchrow(SELECT_LINK, code)
        return None if row is None else _to_link(row)

    async def modify(self, code: str, change: Change) -> Link:
        with translate_errors():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
                row = await conn.fetchrow(SELECT_LINK_FOR_UPDATE, code)
                if row is None:
                    raise LinkNotFound(f"no link {code!r}", field="code")
                link, event = change(_to_link(row))
                await conn.fetchval(UPDATE_LINK_AND_EVENT, code, *_link_args(link), *_event_args(event))
                return link

    async def ping(self) -> None:
        with translate_errors():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                await conn.fetchval("SELECT 1")
