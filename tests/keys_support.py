"""API keys for tests on the real stack: issued through shorten's key use cases (what `just keys`
runs), returned once they are in the `keys` topic (then every service accepts them)."""

from contracts.keys import Scope
from shorten.adapters.asyncpg_keys import AsyncpgKeyStore
from shorten.entrypoints.relay import wait_published
from shorten.keys import KeyService
from shorten.settings import ShortenSettings


async def issue_key(workspace: str, *scopes: Scope, name: str = "test") -> tuple[str, str]:
    """(key id, secret) of a new key of `workspace` (created if new)."""
    settings = ShortenSettings()
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        issued = await KeyService(store=store).create(workspace=workspace, scopes=scopes, name=name)
    await wait_published(settings, [e.event_id for e in issued.events], timeout_s=30)
    return issued.key.key_id, issued.secret


async def revoke_key(key_id: str) -> None:
    settings = ShortenSettings()
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        events = await KeyService(store=store).revoke(key_id)
    await wait_published(settings, [e.event_id for e in events], timeout_s=30)
