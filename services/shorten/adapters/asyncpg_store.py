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

Creates are group-committed: the creates that arrive while `batches_in_flight` statements are
already running wait and then go together, as ONE statement over arrays (INSERT_LINKS_AND_EVENTS),
one commit and one WAL flush for all of them. Each link still commits with its own outbox row
(the batch is one transaction) and each caller still learns whether ITS code was free. Under
load this is what keeps PostgreSQL's and this process's work per create low (one round trip,
one commit, one fsync per batch, not per create); a lone create is not delayed (it goes at once,
as the single-row statement). A batch that the database refuses (a bug: e.g. a duplicate event
id) is retried row by row, so only the offending create sees the error.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import asyncpg
from contracts import links as links_contract
from contracts.links import LinkCreated, LinkEvent
from telemetry import tracing

from shorten.domain.errors import LinkNotFound, StoreUnavailable
from shorten.domain.listing import ListQuery, like_pattern
from shorten.domain.model import Link
from shorten.domain.validation import RedirectType
from shorten.ports import Change

_LINK_COLUMNS = (
    "code, url, redirect_type, expires_at, max_clicks, created_at, updated_at, deleted_at,"
    " workspace, public_stats, tags"
)
# What a create sends: the link's columns with its tags as one comma-joined string (tags have no
# commas), so a batch is a set of flat arrays (unnest cannot take a ragged array of arrays).
_INPUT_COLUMNS = _LINK_COLUMNS.replace("tags", "tags_csv")
_INSERTED_VALUES = _LINK_COLUMNS.replace("tags", "string_to_array(tags_csv, ',')")

# $1..$11 the link, $12..$16 its event. The casts type the parameters of the SELECT list (an
# INSERT ... SELECT does not infer them from the target columns).
INSERT_LINK_AND_EVENT = f"""
WITH input AS (
    SELECT $1::text AS code, $2::text AS url, $3::smallint AS redirect_type, $4::timestamptz AS expires_at,
           $5::bigint AS max_clicks, $6::timestamptz AS created_at, $7::timestamptz AS updated_at,
           $8::timestamptz AS deleted_at, $9::text AS workspace, $10::boolean AS public_stats,
           $11::text AS tags_csv
), link AS (
    INSERT INTO shorten.links ({_LINK_COLUMNS})
    SELECT {_INSERTED_VALUES} FROM input
    ON CONFLICT (code) DO NOTHING
    RETURNING code
)
INSERT INTO shorten.outbox (event_id, event_type, code, payload, traceparent, topic)
SELECT $12::uuid, $13::text, link.code, $14::bytea, $15::text, $16::text FROM link
RETURNING id
"""

# The same for many creates at once: one row per array element. ORDER BY keeps the outbox ids in
# the order the creates arrived; a code taken (before, or earlier in the batch) inserts nothing.
INSERT_LINKS_AND_EVENTS = f"""
WITH input AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::smallint[], $4::timestamptz[], $5::bigint[], $6::timestamptz[],
        $7::timestamptz[], $8::timestamptz[], $9::text[], $10::boolean[], $11::text[],
        $12::uuid[], $13::text[], $14::bytea[], $15::text[], $16::text[]
    ) WITH ORDINALITY AS t({_INPUT_COLUMNS}, event_id, event_type, payload, traceparent, topic, ord)
), link AS (
    INSERT INTO shorten.links ({_LINK_COLUMNS})
    SELECT {_INSERTED_VALUES} FROM input ORDER BY ord
    ON CONFLICT (code) DO NOTHING
    RETURNING code
)
INSERT INTO shorten.outbox (event_id, event_type, code, payload, traceparent, topic)
SELECT input.event_id, input.event_type, input.code, input.payload, input.traceparent, input.topic
FROM input JOIN link USING (code) ORDER BY input.ord
RETURNING code
"""

# A link as its workspace sees it: another workspace's link is not there (same answer, same
# single index lookup, as a code that does not exist).
SELECT_LINK = f"SELECT {_LINK_COLUMNS} FROM shorten.links WHERE code = $1 AND workspace = $2"
SELECT_LINK_FOR_UPDATE = SELECT_LINK + " FOR UPDATE"
SELECT_LINKS = f"SELECT {_LINK_COLUMNS} FROM shorten.links WHERE code = ANY($1::text[]) AND workspace = $2"

# $1 the code, $2..$9 the new state, $10..$14 the event.
UPDATE_LINK_AND_EVENT = """
WITH link AS (
    UPDATE shorten.links
    SET url = $2, redirect_type = $3, expires_at = $4, max_clicks = $5, updated_at = $6, deleted_at = $7,
        public_stats = $8, tags = $9
    WHERE code = $1
    RETURNING code
)
INSERT INTO shorten.outbox (event_id, event_type, code, payload, traceparent, topic)
SELECT $10::uuid, $11::text, link.code, $12::bytea, $13::text, $14::text FROM link
RETURNING id
"""

LINKS_TOPIC = "links"  # the outbox's `topic` of link events (the relay maps it to TOPIC_LINKS)


def list_statement(query: ListQuery) -> tuple[str, list[Any]]:
    """The page's SQL and arguments: only the filters the query has (each combination is its
    own prepared statement, planned for exactly those filters: a generic plan of
    "$q IS NULL OR url ILIKE $q" could use neither the trigram nor the newest-first index)."""
    where, args = ["workspace = $1", "deleted_at IS NULL"], [query.workspace]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if query.q is not None:
        pattern = arg(like_pattern(query.q))
        where.append(f"(code ILIKE {pattern} OR url ILIKE {pattern})")
    if query.tag is not None:
        where.append(f"tags @> ARRAY[{arg(query.tag)}::text]")
    if query.after is not None:
        created_at, code = arg(query.after.created_at), arg(query.after.code)
        where.append(f"(created_at, code) < ({created_at}::timestamptz, {code}::text)")
    order = "ORDER BY created_at DESC, code DESC"
    if query.tag is not None and query.q is None:
        # A tag page finds its codes first in links_workspace_newest_tags_idx alone (an Index
        # Only Scan: `tags` is INCLUDEd, so the rows without the tag are skipped in the index,
        # not fetched from the table one by one), then reads only the page's rows by code.
        keys = f"SELECT code FROM shorten.links WHERE {' AND '.join(where)} {order} LIMIT {arg(query.limit)}"
        return f"SELECT {_LINK_COLUMNS} FROM shorten.links WHERE code = ANY(ARRAY({keys})) {order}", args
    sql = f"SELECT {_LINK_COLUMNS} FROM shorten.links WHERE {' AND '.join(where)} {order} LIMIT {arg(query.limit)}"
    return sql, args


log = logging.getLogger(__name__)

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


async def create_pool(
    dsn: str, *, max_size: int = 10, application_name: str = "shorten", statement_cache_size: int = 100
) -> asyncpg.Pool:
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
        statement_cache_size=statement_cache_size,
    )


def _link_args(link: Link) -> tuple[Any, ...]:
    """The mutable columns, in UPDATE_LINK_AND_EVENT's order ($2..$9)."""
    return (
        link.url,
        link.redirect_type,
        link.expires_at,
        link.max_clicks,
        link.updated_at,
        link.deleted_at,
        link.public_stats,
        list(link.tags),
    )


def _event_args(event: LinkEvent) -> tuple[Any, ...]:
    # The current trace (the API request's span), continued by the relay; None when off.
    return (
        event.event_id,
        type(event).__name__,
        links_contract.encode(event),
        tracing.traceparent(),
        LINKS_TOPIC,
    )


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
        workspace=row["workspace"],
        public_stats=row["public_stats"],
        tags=tuple(row["tags"]),
    )


# A create waiting for its batch: its statement arguments (INSERT_LINK_AND_EVENT's order) and
# the future its caller awaits (True: inserted, False: the code was taken).
_Pending = tuple[tuple[Any, ...], "asyncio.Future[bool]"]


def _insert_args(link: Link, event: LinkCreated) -> tuple[Any, ...]:
    return (
        link.code,
        link.url,
        link.redirect_type,
        link.expires_at,
        link.max_clicks,
        link.created_at,
        link.updated_at,
        link.deleted_at,
        link.workspace,
        link.public_stats,
        ",".join(link.tags),
        *_event_args(event),
    )


def _settle(future: "asyncio.Future[bool]", result: bool | BaseException) -> None:
    if future.done():  # its caller was cancelled (client gone): nobody is waiting
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _retrieve(future: "asyncio.Future[bool]") -> None:
    # Mark an exception as seen even if its caller went away (no "never retrieved" warning).
    if not future.cancelled():
        future.exception()


class AsyncpgLinkStore:
    """LinkStore on an asyncpg pool. Concurrent inserts of one code: the primary key decides,
    ON CONFLICT DO NOTHING makes every loser insert nothing (no outbox row either).

    `batches_in_flight`: how many create statements may run at once; creates arriving while
    that many run make the next batch (at most `max_batch` creates). 0: no group commit, every
    create is its own statement at once (the design before; `just bench writes` compares).

    `deadline_s`: the most a request's store call takes, waiting for a pooled connection, a
    PgBouncer server connection, a lock or a slow statement included; past it the call fails as
    StoreUnavailable (503 with Retry-After), below the clients' own timeouts (a timed-out client
    cannot tell whether its write happened; a 503 says "not served, try again"). A create whose
    batch already left may still be written after its caller's deadline (as with any timeout);
    a create still queued is left out. A bulk import's chunk (`insert_many`) is not bounded by it."""

    def __init__(
        self, pool: asyncpg.Pool, *, batches_in_flight: int = 2, max_batch: int = 256, deadline_s: float = 3.0
    ) -> None:
        self._pool = pool
        self._deadline_s = deadline_s
        self._batches_in_flight = batches_in_flight
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._running = 0
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # statements written (for tests and the benchmark's notes)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        dsn: str,
        *,
        max_size: int = 10,
        application_name: str = "shorten",
        batches_in_flight: int = 2,
        statement_cache_size: int = 100,
        deadline_s: float = 3.0,
    ) -> AsyncIterator["AsyncpgLinkStore"]:
        pool = await create_pool(
            dsn, max_size=max_size, application_name=application_name, statement_cache_size=statement_cache_size
        )
        try:
            store = cls(pool, batches_in_flight=batches_in_flight, deadline_s=deadline_s)
            yield store
            await store._settled()
        finally:
            await pool.close()

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """The request's deadline (see the class): a TimeoutError becomes StoreUnavailable."""
        with translate_errors():
            async with asyncio.timeout(self._deadline_s):
                yield

    async def insert(self, link: Link, event: LinkCreated) -> bool:
        if self._batches_in_flight <= 0:
            async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                return bool(await conn.fetchval(INSERT_LINK_AND_EVENT, *_insert_args(link, event)) is not None)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._queue.append((_insert_args(link, event), future))
        self._schedule_flush()
        # Past the deadline the future is cancelled: still queued, it is left out of the batches.
        async with self._bounded():
            return await future

    def _schedule_flush(self) -> None:
        # call_soon, not at once: the creates that arrive in this event-loop turn join the batch.
        if self._queue and self._running < self._batches_in_flight and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queue or self._running >= self._batches_in_flight:
            return
        # One code at most once per batch: a second create of the same code (two requests for
        # one alias) waits for the next batch, where the primary key refuses it as usual.
        batch: list[_Pending] = []
        later: list[_Pending] = []
        codes: set[str] = set()
        for pending in self._queue:
            code = pending[0][0]
            if pending[1].done():  # its request was cancelled before the batch left: not written
                continue
            if code in codes or len(batch) >= self._max_batch:
                later.append(pending)
            else:
                codes.add(code)
                batch.append(pending)
        self._queue = later
        if not batch:
            return
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._tasks.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        self._running -= 1
        self._schedule_flush()

    async def _settled(self) -> None:
        """Wait for the batches being written (closing the pool under them would fail them)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write(self, batch: list[_Pending]) -> None:
        self.batches += 1
        try:
            async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                results = await self._insert_batch(conn, [args for args, _ in batch])
        except BaseException as exc:  # every waiter gets the failure; nobody hangs
            for _, future in batch:
                _settle(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result)

    async def _insert_batch(self, conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> list[bool | Exception]:
        if len(rows) == 1:
            return [await conn.fetchval(INSERT_LINK_AND_EVENT, *rows[0]) is not None]
        try:
            inserted = {r[0] for r in await conn.fetch(INSERT_LINKS_AND_EVENTS, *zip(*rows, strict=True))}
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _UNAVAILABLE):
                raise
            # Refused as a whole (nothing was written): row by row, so only the row at fault
            # fails and the others are written.
            log.warning("a batch of %d creates was refused (%s); writing them one by one", len(rows), exc)
            return [await self._insert_one(conn, row) for row in rows]
        return [row[0] in inserted for row in rows]

    @staticmethod
    async def _insert_one(conn: asyncpg.Connection, row: tuple[Any, ...]) -> bool | Exception:
        try:
            return await conn.fetchval(INSERT_LINK_AND_EVENT, *row) is not None
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _UNAVAILABLE):
                raise
            return cast(Exception, exc)

    async def insert_many(self, rows: Sequence[tuple[Link, LinkCreated]]) -> list[bool]:
        """A bulk import's chunk: the group commit's statement (INSERT_LINKS_AND_EVENTS) over the
        whole chunk, at once (not through the queue: the chunk is a batch already), on this
        request's own connection. Codes must be distinct within one statement; repeats of a code
        go in the next statement, where the first occurrence makes them find it taken."""
        results: list[bool] = [False] * len(rows)
        todo = list(range(len(rows)))
        with translate_errors():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
                while todo:
                    first: dict[str, int] = {}
                    repeats = []
                    for i in todo:
                        if rows[i][0].code in first:
                            repeats.append(i)
                        else:
                            first[rows[i][0].code] = i
                    batch = list(first.values())
                    self.batches += 1
                    written = await self._insert_batch(conn, [_insert_args(*rows[i]) for i in batch])
                    for i, result in zip(batch, written, strict=True):
                        if isinstance(result, Exception):  # a bug (e.g. a reused event id): fail loudly
                            raise result
                        results[i] = result
                    todo = repeats
        return results

    async def find(self, codes: Sequence[str], *, workspace: str) -> list[Link]:
        if not codes:
            return []
        async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            rows = await conn.fetch(SELECT_LINKS, list(codes), workspace)
        return [_to_link(row) for row in rows]

    async def get(self, code: str, *, workspace: str) -> Link | None:
        async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            row = await conn.fetchrow(SELECT_LINK, code, workspace)
        return None if row is None else _to_link(row)

    async def page(self, query: ListQuery) -> list[Link]:
        sql, args = list_statement(query)
        async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            if query.q is None and query.tag is None:
                rows = await conn.fetch(sql, *args)
            else:
                # Planned for these values: after five runs of a cached statement PostgreSQL
                # may switch to a generic plan, which cannot know how rare `q` or `tag` is and
                # walks the workspace's newest-first index filtering every row (measured:
                # 611 ms instead of 1 ms for a rare `q` over 100k links, `just bench list`). An
                # uncached statement runs once, with a plan for its values (one more round trip).
                rows = await (await conn.prepare(sql)).fetch(*args)
        return [_to_link(row) for row in rows]

    async def modify(self, code: str, change: Change, *, workspace: str) -> Link:
        async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            row = await conn.fetchrow(SELECT_LINK_FOR_UPDATE, code, workspace)
            if row is None:
                raise LinkNotFound(f"no link {code!r}", field="code")
            link, event = change(_to_link(row))
            await conn.fetchval(UPDATE_LINK_AND_EVENT, code, *_link_args(link), *_event_args(event))
            return link

    async def ping(self) -> None:
        async with self._bounded(), self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")
