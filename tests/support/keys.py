"""API keys and link events for tests (and tools) that need them.

Keys are made by shorten's key use cases, the code `just keys` runs: stored (as digests) in
shorten's PostgreSQL and published through its outbox to the `keys` topic; `issue_key` returns
once the key is in the topic, so every service accepts it at once. The stack's local admin key
(`k_local_admin`, `.local/api-key`) is issued by `just up` itself (infra/stackctl/localkey.py).

Link events of any workspace can also be published straight to `links` (`publish_links`), for
tests of the consumers that need links shorten would not make (e.g. of a workspace nobody has a
key of).
"""

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from contracts import links
from contracts.keys import Scope
from contracts.links import LinkCreated, LinkDeleted, LinkEvent
from platformkit.kafka import start_producer
from shorten.adapters.asyncpg_keys import AsyncpgKeyStore
from shorten.bootstrap import wait_published
from shorten.service_layer.key_service import KeyService
from shorten.settings import ShortenSettings

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ADMIN_KEY_ID = "k_local_admin"


def kafka() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    workspace: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def _publish(topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
    producer = await start_producer({"bootstrap_servers": kafka(), "acks": "all"})
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def _now() -> datetime:
    return datetime.now(UTC)


async def issue_key(workspace: str, scopes: tuple[Scope, ...], *, name: str = "test") -> IssuedKey:
    """A new key of `workspace` (created if new), as `just keys create` makes it; returned once
    it is in the `keys` topic."""
    settings = ShortenSettings()
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        issued = await KeyService(store=store).create(workspace=workspace, scopes=scopes, name=name)
    await wait_published(settings, [e.event_id for e in issued.events], timeout_s=30)
    return IssuedKey(key_id=issued.key.key_id, workspace=workspace, secret=issued.secret)


async def revoke_key(key: IssuedKey) -> None:
    """As `just keys revoke`; returns once the revocation is in the `keys` topic."""
    settings = ShortenSettings()
    async with AsyncpgKeyStore.open(settings.postgres_dsn_asyncpg()) as store:
        events = await KeyService(store=store).revoke(key.key_id)
    await wait_published(settings, [e.event_id for e in events], timeout_s=30)


def local_admin_secret() -> str:
    return (ROOT / ".local" / "api-key").read_text().strip()


def link_created(code: str, *, workspace: str, public_stats: bool = False, tags: tuple[str, ...] = ()) -> LinkCreated:
    return LinkCreated(
        event_id=str(uuid.uuid4()),
        occurred_at=_now(),
        code=code,
        url=f"https://example.com/{code}",
        workspace=workspace,
        public_stats=public_stats,
        tags=tags,
    )


def link_deleted(code: str, *, workspace: str) -> LinkDeleted:
    return LinkDeleted(event_id=str(uuid.uuid4()), occurred_at=_now(), code=code, workspace=workspace)


async def publish_links(events: Sequence[LinkEvent]) -> None:
    """Link events of any workspace (shorten creates links in `default` only until workspaces
    reach its API)."""
    await _publish(os.environ.get("TOPIC_LINKS", "links"), [(links.key(e), links.encode(e)) for e in events])
