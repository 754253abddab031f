"""PostgreSQL adapter (SQLAlchemy Core, asyncpg driver): links + outbox in one transaction.

The DDL lives in sql/postgres/001_links.sql (applied by `just migrate`); the tables below
mirror it for building statements.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from contracts import links as links_contract
from contracts.links import LinkCreated, LinkEvent
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    Row,
    SmallInteger,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from telemetry import tracing

from shorten.adapters.asyncpg_store import LINKS_TOPIC, list_statement
from shorten.domain.errors import LinkNotFound, StoreUnavailable
from shorten.domain.listing import ListQuery
from shorten.domain.model import Link
from shorten.domain.validation import RedirectType
from shorten.ports import Change

metadata = MetaData(schema="shorten")

links = Table(
    "links",
    metadata,
    Column("code", Text, primary_key=True),
    Column("url", Text, nullable=False),
    Column("redirect_type", SmallInteger, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("max_clicks", BigInteger),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("workspace", Text, nullable=False),
    Column("public_stats", Boolean, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("event_type", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("published_at", DateTime(timezone=True)),
    Column("traceparent", Text),
    Column("topic", Text, nullable=False),
)


def create_engine(
    dsn: str, *, pool_size: int = 10, application_name: str = "shorten", pooled: bool = True
) -> AsyncEngine:
    """An asyncpg-backed engine for `dsn` (postgresql://...). `pooled=False`: one connection
    per connect() that really closes on exit (the relay: its advisory lock dies with it)."""
    url = make_url(dsn).set(drivername="postgresql+asyncpg")
    connect_args: dict[str, Any] = {
        "timeout": 5,
        "command_timeout": 15,
        "server_settings": {"application_name": application_name},
    }
    if not pooled:
        return create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Connection-level failures become StoreUnavailable (503); anything else is a bug."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError, TimeoutError) as exc:
        raise StoreUnavailable("the link store is unavailable") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable("the link store is unavailable") from exc
        raise


def _link_values(link: Link) -> dict[str, Any]:
    return {
        "url": link.url,
        "redirect_type": link.redirect_type,
        "expires_at": link.expires_at,
        "max_clicks": link.max_clicks,
        "updated_at": link.updated_at,
        "deleted_at": link.deleted_at,
        "public_stats": link.public_stats,
        "tags": list(link.tags),
    }


def _outbox_values(event: LinkEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": type(event).__name__,
        "code": event.code,
        "payload": links_contract.encode(event),
        # The current trace (the API request's span), continued by the relay; None when off.
        "traceparent": tracing.traceparent(),
        "topic": LINKS_TOPIC,
    }


def _to_link(row: Row[Any]) -> Link:
    return Link(
        code=row.code,
        url=row.url,
        redirect_type=cast(RedirectType, row.redirect_type),
        expires_at=row.expires_at,
        max_clicks=row.max_clicks,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        workspace=row.workspace,
        public_stats=row.public_stats,
        tags=tuple(row.tags),
    )


class PostgresLinkStore:
    """LinkStore on PostgreSQL. Concurrent inserts of one code: the primary key decides,
    ON CONFLICT DO NOTHING makes every loser return False without an error."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, link: Link, event: LinkCreated) -> bool:
        stmt = (
            pg_insert(links)
            .values(code=link.code, created_at=link.created_at, workspace=link.workspace, **_link_values(link))
            .on_conflict_do_nothing(index_elements=[links.c.code])
            .returning(links.c.code)
        )
        with translate_errors():
            async with self._engine.begin() as conn:
                if (await conn.execute(stmt)).first() is None:
                    return False
                await conn.execute(outbox.insert().values(**_outbox_values(event)))
        return True

    async def insert_many(self, rows: Sequence[tuple[Link, LinkCreated]]) -> list[bool]:
        """Row by row, each its own transaction (this adapter is the benchmarks' baseline, kept
        simple; the asyncpg store writes a chunk as one statement)."""
        return [await self.insert(link, event) for link, event in rows]

    async def find(self, codes: Sequence[str], *, workspace: str) -> list[Link]:
        with translate_errors():
            async with self._engine.connect() as conn:
                stmt = select(links).where(links.c.code.in_(list(codes)), links.c.workspace == workspace)
                return [_to_link(row) for row in (await conn.execute(stmt)).all()]

    async def get(self, code: str, *, workspace: str) -> Link | None:
        with translate_errors():
            async with self._engine.connect() as conn:
                stmt = select(links).where(links.c.code == code, links.c.workspace == workspace)
                row = (await conn.execute(stmt)).first()
        return None if row is None else _to_link(row)

    async def page(self, query: ListQuery) -> list[Link]:
        sql, args = list_statement(query)
        with translate_errors():
            async with self._engine.connect() as conn:
                # The asyncpg store's statement, through the driver's own placeholders ($n).
                result = await conn.exec_driver_sql(sql, tuple(args))
                return [_to_link(row) for row in result.all()]

    async def modify(self, code: str, change: Change, *, workspace: str) -> Link:
        with translate_errors():
            async with self._engine.begin() as conn:
                return await self._modify(conn, code, change, workspace)

    @staticmethod
    async def _modify(conn: AsyncConnection, code: str, change: Change, workspace: str) -> Link:
        locked = select(links).where(links.c.code == code, links.c.workspace == workspace).with_for_update()
        row = (await conn.execute(locked)).first()
        if row is None:
            raise LinkNotFound(f"no link {code!r}", field="code")
        link, event = change(_to_link(row))
        await conn.execute(update(links).where(links.c.code == code).values(**_link_values(link)))
        await conn.execute(outbox.insert().values(**_outbox_values(event)))
        return link

    async def ping(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
