"""Exactly one relay is active: it holds the session advisory lock; any other stands by."""

import asyncpg
import pytest
from shorten.adapters.postgres import create_engine
from shorten.adapters.postgres_outbox import RELAY_LOCK_KEY, PostgresOutbox

from tests.integration.shorten.support import POSTGRES_DSN

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
