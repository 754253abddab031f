"""PostgreSQL (schema `clicks`, written by the aggregator): lifetime totals, known codes and who
owns them."""

import asyncpg

from analytics.domain.errors import StoreUnavailable
from analytics.domain.model import Lifetime

LIFETIME = """
SELECT t.clicks, t.bot_clicks, t.first_click_at, t.last_click_at, k.code IS NOT NULL AS known,
       coalesce(k.workspace, 'default') AS workspace, coalesce(k.public_stats, false) AS public_stats
FROM (SELECT $1::text AS code) AS q
LEFT JOIN clicks.link_totals AS t ON t.code = q.code
LEFT JOIN clicks.links_known AS k ON k.code = q.code
"""


class PostgresTotals:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def lifetime(self, code: str) -> Lifetime | None:
        try:
            async with self._pool.acquire() as conn:
                row = await conn.fetchrow(LIFETIME, code)
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            raise StoreUnavailable("PostgreSQL is unavailable") from exc
        if row is None or (row["clicks"] is None and not row["known"]):
            return None
        return Lifetime(
            clicks=row["clicks"] or 0,
            bot_clicks=row["bot_clicks"] or 0,
            first_click_at=row["first_click_at"],
            last_click_at=row["last_click_at"],
            workspace=row["workspace"],
            public_stats=row["public_stats"],
        )

    async def ping(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
