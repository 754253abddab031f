"""The links tables' access paths, as PostgreSQL runs them: `EXPLAIN (ANALYZE, BUFFERS)` of the
services' own statements on 20,000 links of one workspace (and as many in another), after
VACUUM ANALYZE (the visibility map is what lets an index-only scan skip the heap).

- shorten, one link by code (+ workspace: another workspace's link is not there): Index Scan on
  the primary key. Not index-only, by design: the answer is the whole row (URL, expiry, tags...),
  an index holding every column would be a second copy of the table written on every change.
- shorten, a workspace's page, newest first, and the next page from a keyset cursor: Index Scan
  on links_workspace_newest_tags_idx in index order, no Sort, and the same few buffers however deep
  the page. Not index-only for the same reason: the page's rows are the answer, and the scan
  reads exactly the rows it returns (LIMIT).
- shorten, `q=` (substring of code or URL): Bitmap Index Scans on the trigram GIN indexes. GIN
  has no index-only scans, and a trigram match is a candidate to recheck on the row anyway.
- shorten, `tag=`: the page's codes from an Index Only Scan of the newest-first index, which
  INCLUDEs `tags`, so the links without the tag are skipped in the index, never fetched; then the
  page's rows by code (primary key).
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

LINKS = 20_000  # in the workspace under test
SHARING = 4  # its rows share the table's pages with 3 other workspaces' (created at the same time)
RARE_TAG_EVERY = 50  # 2 % of the links carry the rare tag


@pytest.fixture(scope="module")
def workspace() -> str:
    return f"plan-{secrets.token_hex(4)}"


def code(workspace: str, n: int) -> str:
    """The code of the workspace's n-th link (1 = newest)."""
    return f"{workspace.replace('-', '')}{n * SHARING:06d}"


@pytest.fixture(scope="module")
async def conn(workspace: str) -> AsyncIterator[asyncpg.Connection]:
    """20,000 links in the workspace interleaved with 60,000 of three others (as links of many
    workspaces are created side by side, so one workspace's rows are spread over the table), each
    known to the aggregator; VACUUM ANALYZE; removed afterwards."""
    c = await asyncpg.connect(POSTGRES_DSN)
    try:
        await c.execute(
            """
            INSERT INTO shorten.links (code, url, created_at, updated_at, workspace, tags)
            SELECT $2::text || lpad(i::text, 6, '0'),
                   'https://site' || (i % 97) || '.example/' || md5(i::text || $2::text),
                   $4::timestamptz - make_interval(secs => i), $4::timestamptz - make_interval(secs => i),
                   CASE WHEN i % $6::int = 0 THEN $1 ELSE $1 || '-other' || (i % $6::int) END,
                   CASE WHEN (i / $6::int) % $5::int = 0 THEN ARRAY['rare', 'all'] ELSE ARRAY['all'] END
            FROM generate_series(1, $3::int * $6::int) AS i
            """,
            workspace,
            workspace.replace("-", ""),
            LINKS,
            datetime.now(UTC),
            RARE_TAG_EVERY,
            SHARING,
        )
        await c.execute(
            """
            INSERT INTO clicks.links_known (code, created_at, last_event_at, workspace)
            SELECT code, created_at, created_at, workspace FROM shorten.links WHERE workspace LIKE $1 || '%'
            ON CONFLICT (code) DO NOTHING
            """,
            workspace,
        )
        await c.execute(
            """
            INSERT INTO clicks.link_totals (code, clicks)
            SELECT code, 1 FROM shorten.links WHERE workspace LIKE $1 || '%'
            ON CONFLICT (code) DO NOTHING
            """,
            workspace,
        )
        await all_visible(c, "shorten.links")
        await all_visible(c, "clicks.links_known")
        await all_visible(c, "clicks.link_totals")
        yield c
    finally:
        await c.execute("DELETE FROM clicks.link_totals WHERE code LIKE $1 || '%'", workspace.replace("-", ""))
        await c.execute("DELETE FROM clicks.links_known WHERE workspace LIKE $1 || '%'", workspace)
        await c.execute("DELETE FROM shorten.links WHERE workspace LIKE $1 || '%'", workspace)
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


async def test_one_link_by_code_is_a_primary_key_lookup(conn: asyncpg.Connection, workspace: str) -> None:
    plan = await explain(conn, SELECT_LINK, code(workspace, 12_345), workspace)
    assert scans(plan) == [("Index Scan", "links_pkey")]
    assert plan["Actual Rows"] == 1
    assert buffers(plan) <= 5  # the btree's levels and one heap page
    # Another workspace's code: the same single lookup, nothing found.
    plan = await explain(conn, SELECT_LINK, code(workspace, 12_345), f"{workspace}-other1")
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
        assert scans(plan) == [("Index Scan", "links_workspace_newest_tags_idx")]
        assert "Sort" not in {n["Node Type"] for n in nodes(plan)}
        assert plan["Actual Rows"] == 21
        assert buffers(plan) <= 30
    assert buffers(deep) <= buffers(first) + 3  # 15,000 rows deep costs what the first page costs


async def test_a_substring_search_uses_the_trigram_indexes(conn: asyncpg.Connection, workspace: str) -> None:
    plan = await explain(conn, *_list(ListQuery(workspace=workspace, q=code(workspace, 4_242)[-8:], limit=21)))
    used = {name for kind, name in scans(plan) if kind == "Bitmap Index Scan"}
    assert {"links_code_trgm_idx", "links_url_trgm_idx"} <= used
    assert not any(kind == "Seq Scan" for kind, _ in scans(plan))


async def test_a_rare_tag_page_finds_its_rows_in_the_index_alone(conn: asyncpg.Connection, workspace: str) -> None:
    """`tag=` of a 2 % tag: the codes of the page come from an Index Only Scan that skips the
    ~1,000 links without the tag inside the index (`tags` is INCLUDEd), then 21 rows by code.
    The same page as one filtered Index Scan (the statement before) reads every skipped link from
    the table: when a workspace's links are spread over pages shared with many others, a heap page
    each. (Buffers are not compared: on this fixture, four workspaces sharing the pages, both read
    ~110-120; the heap reads of the old plan grow with the sharing, the new plan's do not.)"""
    query = ListQuery(workspace=workspace, tag="rare", limit=21)
    plan = await explain(conn, *_list(query))
    assert plan["Actual Rows"] == 21
    found = scans(plan)
    assert ("Index Only Scan", "links_workspace_newest_tags_idx") in found, found
    keys = next(n for n in nodes(plan) if n["Node Type"] == "Index Only Scan")
    assert keys["Rows Removed by Filter"] > 500
    # The walk stays in the index: only rows on pages the last VACUUM could not mark all-visible
    # (up to 5 % of them, all_visible) are read from the table. Seen in CI: 55 of ~1,020.
    walked = keys["Actual Rows"] + keys["Rows Removed by Filter"]
    assert keys["Heap Fetches"] <= 0.1 * walked, (keys["Heap Fetches"], walked)
    assert ("Index Scan", "links_pkey") in found and not any(kind == "Seq Scan" for kind, _ in found)

    before = await explain(conn, FILTERED_TAG_PAGE, workspace, "rare", 21)
    # The statement before: the same walk, but every skipped link is read from the table to test
    # its tags (an Index Scan's filter runs on the heap row): ~1,000 row visits for 21 rows.
    assert scans(before) == [("Index Scan", "links_workspace_newest_tags_idx")]
    assert nodes(before)[1]["Rows Removed by Filter"] > 500


async def test_the_owner_of_a_link_for_its_stats_is_an_index_only_scan(
    conn: asyncpg.Connection, workspace: str
) -> None:
    plan = await explain(conn, LIFETIME, code(workspace, 777))
    found = scans(plan)
    assert ("Index Only Scan", "links_known_pkey") in found, found
    owner = next(n for n in nodes(plan) if n.get("Index Name") == "links_known_pkey")
    assert owner["Heap Fetches"] == 0 and owner["Actual Rows"] == 1
    assert ("Index Scan", "link_totals_pkey") in found, found


# The tag page as one statement (before the INCLUDE and the split into codes, then rows).
FILTERED_TAG_PAGE = """
SELECT * FROM shorten.links WHERE workspace = $1 AND deleted_at IS NULL AND tags @> ARRAY[$2::text]
ORDER BY created_at DESC, code DESC LIMIT $3
"""


def _list(query: ListQuery) -> tuple[str, ...]:
    sql, args = list_statement(query)
    return (sql, *args)
