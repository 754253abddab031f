"""The relay's PostgreSQL side: one active relay (advisory lock), retention of published rows."""

import uuid

import asyncpg
import pytest
from shorten.adapters.postgres import create_engine
from shorten.adapters.postgres_outbox import RELAY_LOCK_KEY, PostgresOutbox

from tests.integration.shorten.support import POSTGRES_DSN, unique_alias

pytestmark = pytest.mark.integration


async def test_the_running_relay_holds_the_lock_and_a_second_cannot_take_it() -> None:
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        holders = await conn.fetch(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1",
            RELAY_LOCK_KEY >> 32,
            RELAY_LOCK_KEY & 0xFFFFFFFF,
        )
    finally:
        await conn.close()
    assert [h["application_name"] for h in holders] == ["shorten-relay"]

    engine = create_engine(POSTGRES_DSN, application_name="shorten-relay-test", pooled=False)
    try:
        async with PostgresOutbox.open(engine) as second:
            assert await second.try_lock() is False
    finally:
        await engine.dispose()


async def test_purge_deletes_only_rows_published_before_the_retention() -> None:
    """Rows are inserted already published (the running relay ignores them)."""
    code = unique_alias("purge")
    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        ids = {}
        for age in ("2 days", "1 hour"):
            ids[age] = await conn.fetchval(
                "INSERT INTO shorten.outbox (event_id, event_type, code, payload, published_at) "
                "VALUES ($1, 'LinkDeleted', $2, '\\x7b7d', now() - $3::text::interval) RETURNING id",
                uuid.uuid4(),
                code,
                age,
            )
        engine = create_engine(POSTGRES_DSN, application_name="shorten-relay-test", pooled=False)
        try:
            async with PostgresOutbox.open(engine) as outbox:
                assert await outbox.purge_published(24 * 3600) >= 1
        finally:
            await engine.dispose()
        left = {r["id"] for r in await conn.fetch("SELECT id FROM shorten.outbox WHERE code = $1", code)}
    finally:
        await conn.close()
    assert left == {ids["1 hour"]}
