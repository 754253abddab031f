"""API keys and link events for tests (and tools) that need them before `just keys` exists in this
branch: they publish straight to the `keys` and `links` topics (the contracts), as shorten will.

ONE place on purpose: once shorten publishes keys (`just keys create ...`, and the stack's bootstrap
publishes the local admin key `k_local_admin`), `issue_key`/`revoke_key` can call `just keys` and
`publish_local_admin_key` can go.

    python -m tests.support.keys publish-local-admin   # idempotent: the key of .local/api-key
"""

import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from contracts import keys, links
from contracts.keys import KeyIssued, KeyRevoked, Scope
from contracts.links import LinkCreated, LinkDeleted, LinkEvent
from platformkit.apikeys import digest, new_key_id, new_secret
from platformkit.kafka import start_producer

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
    """A new key of `workspace` (what `just keys create --workspace W --scopes ...` will do)."""
    key_id, secret = new_key_id(), new_secret()
    event = KeyIssued(event_id=str(uuid.uuid4()), occurred_at=_now(), key_id=key_id, workspace=workspace,
                      scopes=scopes, digest=digest(secret), name=name)
    await _publish("keys", [(keys.key(event), keys.encode(event))])
    return IssuedKey(key_id=key_id, workspace=workspace, secret=secret)


async def revoke_key(key: IssuedKey) -> None:
    event = KeyRevoked(event_id=str(uuid.uuid4()), occurred_at=_now(), key_id=key.key_id, workspace=key.workspace)
    await _publish("keys", [(keys.key(event), keys.encode(event))])


def local_admin_secret() -> str:
    return (ROOT / ".local" / "api-key").read_text().strip()


async def publish_local_admin_key() -> None:
    """KeyIssued(k_local_admin, default, admin) for .local/api-key. Idempotent: the same key id
    again only replaces the same state (compacted topic, newest event wins)."""
    event = KeyIssued(event_id=str(uuid.uuid4()), occurred_at=_now(), key_id=LOCAL_ADMIN_KEY_ID,
                      workspace="default", scopes=("admin",), digest=digest(local_admin_secret()),
                      name="local admin (.local/api-key)")
    await _publish("keys", [(keys.key(event), keys.encode(event))])


def link_created(code: str, *, workspace: str, public_stats: bool = False,
                 tags: tuple[str, ...] = ()) -> LinkCreated:
    return LinkCreated(event_id=str(uuid.uuid4()), occurred_at=_now(), code=code,
                       url=f"https://example.com/{code}", workspace=workspace, public_stats=public_stats,
                       tags=tags)


def link_deleted(code: str, *, workspace: str) -> LinkDeleted:
    return LinkDeleted(event_id=str(uuid.uuid4()), occurred_at=_now(), code=code, workspace=workspace)


async def publish_links(events: Sequence[LinkEvent]) -> None:
    """Link events of any workspace (shorten creates links in `default` only until workspaces
    reach its API)."""
    await _publish(os.environ.get("TOPIC_LINKS", "links"), [(links.key(e), links.encode(e)) for e in events])


if __name__ == "__main__":
    if sys.argv[1:] != ["publish-local-admin"]:
        raise SystemExit("usage: python -m tests.support.keys publish-local-admin")
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:  # never guess: the default port may be another stack's
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set: run with this checkout's .env loaded")
    asyncio.run(publish_local_admin_key())
    print(f"published {LOCAL_ADMIN_KEY_ID} (workspace default, scope admin) for .local/api-key")
