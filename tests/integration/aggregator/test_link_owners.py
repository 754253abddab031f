"""The links agent projects each link's owner, public_stats and tags into PostgreSQL
(clicks.links_known) and ClickHouse (link_workspaces); the newest event wins in both, and events
read again (a replay, a redelivery, an older event arriving late) change nothing."""

from datetime import timedelta

import msgspec
import pytest

from tests.conftest import wait_until_async
from tests.integration.aggregator.support import Stores, unique_code
from tests.support.keys import link_created, link_deleted, publish_links

pytestmark = pytest.mark.integration


async def test_newest_event_wins_and_replays_change_nothing() -> None:
    code = unique_code("own")
    created = link_created(code, workspace="acme-own", public_stats=True, tags=("a",))
    updated = msgspec.structs.replace(
        created, occurred_at=created.occurred_at + timedelta(seconds=1), public_stats=False, tags=("b", "c")
    )
    deleted = msgspec.structs.replace(
        link_deleted(code, workspace="acme-own"), occurred_at=created.occurred_at + timedelta(seconds=2)
    )
    async with Stores() as stores:
        assert stores.pg is not None

        async def pg_row() -> tuple[object, ...] | None:
            row = await stores.pg.fetchrow(  # type: ignore[union-attr]
                "SELECT workspace, public_stats, tags, deleted_at IS NOT NULL AS deleted, last_event_at "
                "FROM clicks.links_known WHERE code = $1",
                code,
            )
            return None if row is None else tuple(row)

        async def ch_newest() -> list[list[str]]:
            return await stores.query(
                "SELECT workspace, argMax(tags, version), argMax(deleted, version) FROM link_workspaces "
                f"WHERE code = '{code}' GROUP BY workspace"
            )

        await publish_links([created, updated])

        async def updated_seen() -> bool:
            row = await pg_row()
            return row is not None and row[2] == ["b", "c"]

        await wait_until_async(updated_seen, timeout=30, interval=0.2, what="the update applied")
        assert (await pg_row())[:4] == ("acme-own", False, ["b", "c"], False)  # type: ignore[index]
        assert await ch_newest() == [["acme-own", "['b','c']", "0"]]

        # Late and repeated events: the older creation again, then the update again.
        await publish_links([created, updated, deleted, created])

        async def deleted_seen() -> bool:
            row = await pg_row()
            return row is not None and row[3] is True

        await wait_until_async(deleted_seen, timeout=30, interval=0.2, what="the deletion applied")
        # Deleted: the owner and tags stay (its stats stay the owner's), the stats are private.
        assert (await pg_row())[:4] == ("acme-own", False, ["b", "c"], True)  # type: ignore[index]

        async def ch_deleted() -> bool:
            return await ch_newest() == [["acme-own", "[]", "1"]]

        await wait_until_async(ch_deleted, timeout=30, interval=0.2, what="link_workspaces: the deletion is newest")
