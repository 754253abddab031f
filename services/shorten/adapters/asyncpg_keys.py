"""PostgreSQL adapter of the key store (asyncpg): workspaces, API keys (digests only) and their
`keys` events in the outbox, written in one transaction so the store and the topic never
disagree for longer than the relay takes."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import asyncpg
from contracts import keys as keys_contract
from contracts.keys import KeyEvent, Scope

from shorten.adapters.asyncpg_store import translate_errors
from shorten.domain.keys import ApiKey
from shorten.ports import KeyChange

_COLUMNS = "key_id, workspace, scopes, digest, name, created_at, expires_at, revoked_at, replaced_by"

SELECT_KEY_FOR_UPDATE = f"SELECT {_COLUMNS} FROM shorten.api_keys WHERE key_id = $1 FOR UPDATE"
SELECT_KEYS = (
    f"SELECT {_COLUMNS} FROM shorten.api_keys WHERE $1::text IS NULL OR workspace = $1 ORDER BY created_at, key_id"
)
INSERT_WORKSPACE = "INSERT INTO shorten.workspaces (slug) VALUES ($1) ON CONFLICT (slug) DO NOTHING"
UPSERT_KEY = f"""
INSERT INTO shorten.api_keys ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (key_id) DO UPDATE SET
    workspace = EXCLUDED.workspace, scopes = EXCLUDED.scopes, digest = EXCLUDED.digest, name = EXCLUDED.name,
    expires_at = EXCLUDED.expires_at, revoked_at = EXCLUDED.revoked_at, replaced_by = EXCLUDED.replaced_by
"""
INSERT_EVENT = """
INSERT INTO shorten.outbox (event_id, event_type, code, payload, topic) VALUES ($1::uuid, $2, $3, $4, 'keys')
"""


def _to_key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        workspace=row["workspace"],
        scopes=cast(tuple[Scope, ...], tuple(row["scopes"])),
        digest=row["digest"],
        name=row["name"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        replaced_by=row["replaced_by"],
    )


def _key_args(key: ApiKey) -> tuple[Any, ...]:
    return (
        key.key_id,
        key.workspace,
        list(key.scopes),
        key.digest,
        key.name,
        key.created_at,
        key.expires_at,
        key.revoked_at,
        key.replaced_by,
    )


class AsyncpgKeyStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    @asynccontextmanager
    async def open(cls, dsn: str) -> AsyncIterator["AsyncpgKeyStore"]:
        """One connection: the CLI makes a handful of statements."""
        with translate_errors():
            conn = await asyncpg.connect(dsn, timeout=5, server_settings={"application_name": "shorten-keys"})
        try:
            yield cls(conn)
        finally:
            await conn.close()

    async def list(self, workspace: str | None = None) -> Sequence[ApiKey]:
        with translate_errors():
            return [_to_key(row) for row in await self._conn.fetch(SELECT_KEYS, workspace)]

    async def write(self, key_id: str, change: KeyChange) -> Sequence[KeyEvent]:
        """Lock the key (None when it does not exist), compute the keys to store and their
        events with `change`, write keys, workspaces and events in one transaction."""
        with translate_errors():
            async with self._conn.transaction():
                row = await self._conn.fetchrow(SELECT_KEY_FOR_UPDATE, key_id)
                writes = change(None if row is None else _to_key(row))
                for key, event in writes:
                    await self._conn.execute(INSERT_WORKSPACE, key.workspace)
                    await self._conn.execute(UPSERT_KEY, *_key_args(key))
                    await self._conn.execute(
                        INSERT_EVENT, event.event_id, type(event).__name__, event.key_id, keys_contract.encode(event)
                    )
        return [event for _, event in writes]
