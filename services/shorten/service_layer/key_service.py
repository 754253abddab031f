"""Use cases of API keys (`just keys`): create, list, rotate, revoke, and make sure the stack's
local admin key exists. Each returns the `keys` events it wrote (the caller waits until they
are in the topic); secrets are returned to be shown once and are never stored."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from contracts.keys import KeyEvent, Scope
from platformkit.apikeys import digest, new_key_id, new_secret

from shorten.domain.errors import InvalidInput
from shorten.domain.keys import (
    LOCAL_ADMIN_KEY_ID,
    LOCAL_ADMIN_SCOPES,
    LOCAL_ADMIN_WORKSPACE,
    ApiKey,
    KeyNotFound,
    key_issued,
    key_revoked,
    retire,
    validate_name,
    validate_workspace,
)
from shorten.ports import KeyStore
from shorten.service_layer.link_service import new_event_id, utcnow


@dataclass(frozen=True, kw_only=True)
class IssuedKey:
    """A new key and its secret (shown once), with the events to wait for."""

    key: ApiKey
    secret: str
    events: Sequence[KeyEvent]


class KeyService:
    def __init__(
        self,
        *,
        store: KeyStore,
        clock: Callable[[], datetime] = utcnow,
        event_ids: Callable[[], str] = new_event_id,
        secrets: Callable[[], str] = new_secret,
        key_ids: Callable[[], str] = new_key_id,
    ) -> None:
        self._store = store
        self._clock = clock
        self._event_ids = event_ids
        self._secrets = secrets
        self._key_ids = key_ids

    async def create(
        self, *, workspace: str, scopes: tuple[Scope, ...], name: str = "", expires_in: timedelta | None = None
    ) -> IssuedKey:
        """A new key of `workspace` (created if new)."""
        now, secret = self._clock(), self._secrets()
        key = ApiKey(
            key_id=self._key_ids(),
            workspace=validate_workspace(workspace),
            scopes=scopes,
            digest=digest(secret),
            name=validate_name(name),
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        events = await self._store.write(
            key.key_id, lambda _: [(key, key_issued(key, event_id=self._event_ids(), now=now))]
        )
        return IssuedKey(key=key, secret=secret, events=events)

    async def list(self, workspace: str | None = None) -> Sequence[ApiKey]:
        return await self._store.list(None if workspace is None else validate_workspace(workspace))

    async def rotate(self, key_id: str, *, grace: timedelta = timedelta(0)) -> IssuedKey:
        """A new key with the same workspace, scopes, name and expiry; the old one is refused
        from now + grace on (revoked at once when grace is 0)."""
        if key_id == LOCAL_ADMIN_KEY_ID:
            raise InvalidInput(
                "the local admin key follows .local/api-key: delete that file and run `just up` to replace it",
                code="key_reserved",
                field="key_id",
            )
        now, secret, new_id = self._clock(), self._secrets(), self._key_ids()
        issued: list[ApiKey] = []

        def change(old: ApiKey | None) -> list[tuple[ApiKey, KeyEvent]]:
            if old is None:
                raise KeyNotFound(f"no key {key_id!r}", field="key_id")
            retired = retire(old, replaced_by=new_id, now=now, grace=grace)
            new = replace(old, key_id=new_id, digest=digest(secret), created_at=now, revoked_at=None, replaced_by=None)
            issued.append(new)
            old_event = (key_revoked if retired.revoked_at else key_issued)(
                retired, event_id=self._event_ids(), now=now
            )
            # The new key first: at no instant is neither key accepted.
            return [(new, key_issued(new, event_id=self._event_ids(), now=now)), (retired, old_event)]

        events = await self._store.write(key_id, change)
        return IssuedKey(key=issued[0], secret=secret, events=events)

    async def revoke(self, key_id: str) -> Sequence[KeyEvent]:
        """Refuse the key from now on; no event when it is revoked already."""
        now = self._clock()

        def change(key: ApiKey | None) -> list[tuple[ApiKey, KeyEvent]]:
            if key is None:
                raise KeyNotFound(f"no key {key_id!r}", field="key_id")
            if key.revoked_at is not None:
                return []
            revoked = replace(key, revoked_at=now)
            return [(revoked, key_revoked(revoked, event_id=self._event_ids(), now=now))]

        return await self._store.write(key_id, change)

    async def republish(self) -> Sequence[KeyEvent]:
        """Every stored key's state as a new event (issued, or revoked): after the `keys` topic
        lost data (a Kafka cluster rebuilt from scratch), the store is the record of the keys."""
        now = self._clock()
        events: list[KeyEvent] = []

        def again(key: ApiKey | None) -> list[tuple[ApiKey, KeyEvent]]:
            if key is None:  # deleted meanwhile: keys are never deleted, but do not invent one
                return []
            publish = key_revoked if key.revoked_at is not None else key_issued
            return [(key, publish(key, event_id=self._event_ids(), now=now))]

        for key in await self._store.list():
            events += await self._store.write(key.key_id, again)
        return events

    async def ensure_local_admin(self, secret: str, *, republish: bool = False) -> Sequence[KeyEvent]:
        """The stack's local admin key (`k_local_admin`, admin of `default`) with this secret's
        digest: issued when missing, revoked, expired or of another secret, or when
        `republish` (the topic lacks it); no event when it is as it should be."""
        now = self._clock()

        def change(key: ApiKey | None) -> list[tuple[ApiKey, KeyEvent]]:
            wanted = ApiKey(
                key_id=LOCAL_ADMIN_KEY_ID,
                workspace=LOCAL_ADMIN_WORKSPACE,
                scopes=LOCAL_ADMIN_SCOPES,
                digest=digest(secret),
                name="local admin (.local/api-key)",
                created_at=now if key is None else key.created_at,
            )
            if key == wanted and not republish:
                return []
            return [(wanted, key_issued(wanted, event_id=self._event_ids(), now=now))]

        return await self._store.write(LOCAL_ADMIN_KEY_ID, change)
