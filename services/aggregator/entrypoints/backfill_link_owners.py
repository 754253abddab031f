"""`python -m aggregator backfill-link-owners`: copy every link PostgreSQL knows (clicks.links_known)
into ClickHouse's link_workspaces, once, after upgrading to workspaces (issue 10). The links agent
fills link_workspaces from the `links` events it reads from now on; links it had read before the
table existed are only in PostgreSQL. Idempotent: each row carries the version of the link's last
event, so running it again (or while the agent writes newer events) changes nothing a query sees."""

import logging

from aggregator.adapters.clickhouse import ClickHouse, ClickHouseLinkOwners, build_client
from aggregator.adapters.postgres import PostgresLinks, create_pool
from aggregator.domain.link_owners import LinkOwnerRow, version_of
from aggregator.settings import AggregatorSettings

log = logging.getLogger(__name__)


async def backfill_link_owners(settings: AggregatorSettings) -> int:
    pool = await create_pool(settings.postgres_dsn_asyncpg(), size=1)
    http = build_client(
        settings.clickhouse_url,
        database=settings.clickhouse_database,
        timeout_s=settings.aggregator_clickhouse_timeout_s,
    )
    owners = ClickHouseLinkOwners(ClickHouse(http))
    copied = 0
    try:
        async for chunk in PostgresLinks(pool).owners():
            await owners.put(
                [
                    LinkOwnerRow(
                        workspace=ws, code=code, tags=tuple(tags), deleted=int(deleted), version=version_of(at)
                    )
                    for code, ws, tags, deleted, at in chunk
                ]
            )
            copied += len(chunk)
            log.info("link_workspaces: %d links copied", copied)
    finally:
        await http.aclose()
        await pool.close()
    log.info("link_workspaces: done, %d links", copied)
    return copied
