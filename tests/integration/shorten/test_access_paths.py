"""The links tables' access paths, as PostgreSQL runs them: `EXPLAIN (ANALYZE, BUFFERS)` of the
services' own statements on 20,000 links of one workspace (and as many in another), after
VACUUM ANALYZE (the visibility map is what lets an index-only scan skip the heap).

- shorten, one link by code (+ workspace: another workspace's link is not there): Index Scan on
  the primary key. Not index-only, by design: the answer is the whole row (URL, expiry, tags...),
  an index holding every column would be a second copy of the table written on every change.
- shorten, a workspace's page, newest first, and the next page from a keyset cursor: Index Scan
  on links_workspace_newest_idx in index order, no Sort, and the same few buffers however deep
  the page. Not index-only for the same reason: the page's rows are the answer, and the scan
  reads exactly the rows it returns (LIMIT).
- shorten, `q=` (substring of code or URL): Bitmap Index Scans on the trigram GIN indexes. GIN
  has no index-only scans, and a trigram match is a candidate to recheck on the row anyway.
- shorten, `tag=`: the tag's GIN index or the newest-first index, whichever the planner costs
  lower for the tag's frequency; with `tags` INCLUDEd in the newest-first index, the walk skips
  non-matching rows in the index (Index Only Scan of the keys, then the page's rows by key).
- analytics, a link's owner for its stats (clicks.links_known): Index Only Scan of its primary
  key, which INCLUDEs workspace and public_stats (050_links_known_covering.sql), no heap fetch.
  Its totals (clicks.link_totals) are an Index Scan: they change with every batch of clicks, so
  covering them would make each update write the index too (no HOT update) and their pages
  would rarely be all-visible anyway.
"""

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from analytics.adapters.postgres import LIFETIME
from shorten.adapters.asyncpg_store import SELECT_LINK, list_statement
from shorten.domain.listing import ListQuery, Position

from tests.conftest import wait_until_async
from tests.integration.aggregator.support import POSTGRES_DSN

pytestmark = pytest.mark.integration

LINKS = 20_000
RARE_TAG_EVERY = 50  # 2 % of the links carry the rare tag


@pytest.fixture(scope="module")
def workspace() -> str:
    return f"plan-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
async def conn(workspace: str) -> AsyncIterator[asyncpg.Connection]:
    """20,000 links in the workspace and 20,000 in another, each known to the aggregator; VACUUM
    ANALYZE; removed afterwards."""
    other = f"{workspace}-other"
    prefix = workspace.replace("-", "")
    c = await asyncpg.connect(POSTGRES_DSN)
    try:
        for ws, tag_prefix in ((workspace, prefix), (other, f"{prefix}o")):
            await c.execute(
                """
                INSERT INTO shorten.links (code, url, created_at, updated_at, workspace, tags)
                SELECT $2 || lpad(i::text, 6, '0'),
                       'https://site' || (i % 97) || '.example/' || md5(i::text || $2),
                       $4::timestamptz - make_interval(secs => i), $4::timestamptz - make_interval(secs => i),
                       $1, CASE WHEN i % $5 = 0 THEN ARRAY['rare', 'all'] ELSE ARRAY['all'] END
                FROM generate_series(1, $3) AS i
                """,
                ws,
                tag_prefix,
                LINKS,
                datetime.now(UTC),
                RARE_TAG_EVERY,
            )
            await c.execute(
                """
                INSERT INTO clicks.links_known (code, created_at, last_event_at, workspace)
                SELECT code, created_at, created_at, workspace FROM shorten.links WHERE workspace = $1
                ON CONFLICT (code) DO NOTHING
                """,
                ws,
            )
        await all_visible(c, "shorten.links")
        await all_visible(c, "clicks.links_known")
        yield c
    finally:
        for ws in (workspace, other):
            await c.execute("DELETE FROM clicks.links_known WHERE workspace = $1", ws)
            await c.execute("DELETE FROM shorten.links WHERE workspace = $1", ws)
        await c.close()


async def all_visible(conn: asyncpg.Connection, table: str) -> None:
    """VACUUM (ANALYZE) until the visibility map covers the table's pages: a VACUUM cannot mark a
    page all-visible while a transaction older than its rows is open (another service's, on a
    busy stack), so it is repeated until one can, with a deadline."""

    async def covered() -> bool:
        await conn.execute(f"VACUUM (ANALYZE) {table}")
        pages, visible = await conn.fetchrow(
            "SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass", table
        )
        return bool(pages) and visible >= 0.95 * pages

    await wait_until_async(covered, timeout=60, interval=0.5, what=f"{table} all-visible after VACUUM")


async def explain(conn: asyncpg.Connection, sql: str, *args: Any) -> dict[str, Any]:
    """The plan's root node, as PostgreSQL ran it (ANALYZE) with its buffer counts."""
    raw = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found.extend(nodes(child))
    return found


def scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, index or table) of every scan in the plan."""
    return [
        (n["Node Type"], n.get("Index Name") or n.get("Relation Name", ""))
        for n in nodes(plan)
        if "Scan" in n["Node Type"]
    ]


def buffers(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


def code(workspace: str, i: int) -> str:
    return f"{workspace.replace('-', '')}{i:06d}"


async def test_one_link_by_code_is_a_primary_key_lookup(conn: asyncpg.Connection, workspace: str) -> None:
    plan = await explain(conn, SELECT_LINK, code(workspace, 12_345), workspace)
    assert scans(plan) == [("Index Scan", "links_pkey")]
    assert plan["Actual Rows"] == 1
    assert buffers(plan) <= 5  # the btree's levels and one heap page
    # Another workspace's code: the same single lookup, nothing found.
    plan = await explain(conn, SELECT_LINK, code(workspace, 12_345), f"{workspace}-other")
    assert scans(plan) == [("Index Scan", "links_pkey")] and plan["Actual Rows"] == 0


async def test_a_page_and_a_deep_keyset_page_read_the_same_few_buffers(
    conn: asyncpg.Connection, workspace: str
) -> None:
    first = await explain(conn, *_list(ListQuery(workspace=workspace, limit=21)))
    row = await conn.fetchrow("SELECT created_at, code FROM shorten.links WHERE code = $1", code(workspace, 15_000))
    deep = await explain(
        conn, *_list(ListQuery(workspace=workspace, limit=21, after=Position(row["created_at"], row["code"])))
    )
    for plan in (first, deep):
        assert scans(plan) == [("Index Scan", "links_workspace_newest_idx")]
        assert "Sort" not in {n["Node Type"] for n in nodes(plan)}
        assert plan["Actual Rows"] == 21
        assert buffers(plan) <= 30
    assert buffers(deep) <= buffers(first) + 3  # 15,000 rows deep costs what the first page costs


async def test_a_substring_search_uses_the_trigram_indexes(conn: asyncpg.Connection, workspace: str) -> None:
    plan = await explain(conn, *_list(ListQuery(workspace=workspace, q=code(workspace, 4_242)[-8:], limit=21)))
    used = {name for kind, name in scans(plan) if kind == "Bitmap Index Scan"}
    assert {"links_code_trgm_idx", "links_url_trgm_idx"} <= used
    assert not any(kind == "Seq Scan" for kind, _ in scans(plan))


async def test_a_rare_tag_page_does_not_visit_the_rows_it_skips(conn: asyncpg.Connection, workspace: str) -> None:
    plan = await explain(conn, *_list(ListQuery(workspace=workspace, tag="rare", limit=21)))
    assert plan["Actual Rows"] == 21
    assert not any(kind == "Seq Scan" for kind, _ in scans(plan))
    # 21 rows of a 2 % tag: a walk that fetched each skipped row would touch ~1,000 rows.
    assert buffers(plan) <= 120, scans(plan)


async def test_the_owner_of_a_link_for_its_stats_is_an_index_only_scan(
    conn: asyncpg.Connection, workspace: str
) -> None:
    plan = await explain(conn, LIFETIME, code(workspace, 777))
    found = scans(plan)
    assert ("Index Only Scan", "links_known_pkey") in found, found
    owner = next(n for n in nodes(plan) if n.get("Index Name") == "links_known_pkey")
    assert owner["Heap Fetches"] == 0 and owner["Actual Rows"] == 1
    assert ("Index Scan", "link_totals_pkey") in found, found


def _list(query: ListQuery) -> tuple[str, ...]:
    sql, args = list_statement(query)
    return (sql, *args)
