"""The relay's PostgreSQL connection: outbox lock, read and mark the outbox.

One dedicated connection in autocommit mode (never idle in a transaction, which would hold
back vacuum of the outbox's dead rows). The session advisory lock makes exactly one relay active: it lives as
long as this connection, so a crashed relay's lock is released by PostgreSQL and a standby
takes over.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import delete, func, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shorten.adapters.postgres import outbox
from shorten.ports import OutboxRecord

# pg_advisory_lock key of the active relay: int.from_bytes(b"shorten").
RELAY_LOCK_KEY = 0x73686F7274656E


_MARK_AND_FETCH = text(
    """
    WITH marked AS (
        UPDATE shorten.outbox SET published_at = now() WHERE id = ANY(CAST(:marked AS bigint[]))
    )
    SELECT id, event_id, code, payload, traceparent, topic FROM shorten.outbox
    WHERE published_at IS NULL AND id <> ALL(CAST(:marked AS bigint[]))
    ORDER BY id
    LIMIT :limit
    """
)


class PostgresOutbox:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @classmethod
    @asynccontextmanager
    async def open(cls, engine: AsyncEngine) -> AsyncIterator["PostgresOutbox"]:
        """Connect (engine should be unpooled: closing must end the session and its lock)."""
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield cls(conn)

    async def try_lock(self) -> bool:
        """Become the active relay if no other session holds the lock (non-blocking)."""
        result = await self._conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY})
        return bool(result.scalar_one())

    async def unlock(self) -> None:
        await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK_KEY})

    async def unpublished(self, event_ids: Sequence[str]) -> int:
        """How many of these events are still waiting in the outbox (not acknowledged by Kafka)."""
        result = await self._conn.execute(
            text(
                "SELECT count(*) FROM shorten.outbox"
                " WHERE event_id = ANY(CAST(:ids AS uuid[])) AND published_at IS NULL"
            ),
            {"ids": list(event_ids)},
        )
        return int(result.scalar_one())

    async def fetch_unpublished(self, limit: int, *, mark_first: Sequence[int] = ()) -> Sequence[OutboxRecord]:
        # A data-modifying CTE runs even though the SELECT does not read it; the SELECT sees
        # the snapshot from before the UPDATE, hence the explicit exclusion of the marked ids.
        result = await self._conn.execute(_MARK_AND_FETCH, {"marked": list(mark_first), "limit": limit})
        return [
            OutboxRecord(
                id=r.id,
                event_id=str(r.event_id),
                code=r.code,
                payload=bytes(r.payload),
                traceparent=r.traceparent,
                topic=r.topic,
            )
            for r in result.all()
        ]

    async def mark_published(self, ids: Sequence[int]) -> None:
        await self._conn.execute(update(outbox).where(outbox.c.id.in_(list(ids))).values(published_at=func.now()))

    async def purge_published(self, older_than_seconds: float) -> int:
        cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds)
        result = await self._conn.execute(
            delete(outbox).where(outbox.c.published_at.is_not(None), outbox.c.published_at < cutoff)
        )
        return int(result.rowcount)
