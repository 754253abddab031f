"""API keys as shorten manages them (`just keys`): the use cases over a fake key store."""

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from contracts.keys import KeyEvent, KeyIssued, KeyRevoked
from platformkit.apikeys import KeyBook, digest
from shorten.domain.errors import InvalidInput
from shorten.domain.keys import LOCAL_ADMIN_KEY_ID, ApiKey, KeyNotFound, KeyRevokedAlready, parse_duration
from shorten.ports import KeyChange
from shorten.service_layer.key_service import KeyService

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeKeyStore:
    def __init__(self) -> None:
        self.keys: dict[str, ApiKey] = {}
        self.events: list[KeyEvent] = []

    async def list(self, workspace: str | None = None) -> Sequence[ApiKey]:
        return [k for k in self.keys.values() if workspace is None or k.workspace == workspace]

    async def write(self, key_id: str, change: KeyChange) -> Sequence[KeyEvent]:
        writes = change(self.keys.get(key_id))
        for key, event in writes:
            self.keys[key.key_id] = key
            self.events.append(event)
        return [event for _, event in writes]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make(store: FakeKeyStore, clock: Clock) -> KeyService:
    counter = itertools.count(1)
    return KeyService(
        store=store,
        clock=clock,
        event_ids=lambda: f"e{next(counter)}",
        secrets=lambda: f"lsk_secret{next(counter)}",
        key_ids=lambda: f"k_{next(counter)}",
    )


def book_of(events: Sequence[KeyEvent], clock: Clock) -> KeyBook:
    book = KeyBook(clock=clock)
    for event in events:
        book.apply(event)
    return book


async def test_create_stores_only_the_digest_and_issues_the_key() -> None:
    store, clock = FakeKeyStore(), Clock()
    issued = await make(store, clock).create(
        workspace="acme", scopes=("links:write", "stats:read"), name="ci", expires_in=timedelta(days=90)
    )
    key = store.keys[issued.key.key_id]
    assert key.digest == digest(issued.secret) and issued.secret not in repr(key)
    assert key.expires_at == T0 + timedelta(days=90)
    [event] = issued.events
    assert isinstance(event, KeyIssued) and event.digest == key.digest and event.scopes == key.scopes
    principal = book_of(store.events, clock).find(issued.secret)
    assert principal is not None and (principal.workspace, principal.key_id) == ("acme", key.key_id)


@pytest.mark.parametrize("workspace", ["Acme", "-acme", "", "a" * 41, "ac me", "acme/x"])
async def test_a_bad_workspace_slug_is_refused(workspace: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await make(FakeKeyStore(), Clock()).create(workspace=workspace, scopes=("links:read",))
    assert refused.value.code == "workspace_invalid"


async def test_rotate_with_grace_keeps_the_old_secret_until_the_grace_ends() -> None:
    store, clock = FakeKeyStore(), Clock()
    keys = make(store, clock)
    old = await keys.create(workspace="acme", scopes=("links:read",))
    new = await keys.rotate(old.key.key_id, grace=timedelta(hours=1))
    assert (new.key.workspace, new.key.scopes) == ("acme", ("links:read",)) and new.secret != old.secret
    assert store.keys[old.key.key_id].replaced_by == new.key.key_id
    book = book_of(store.events, clock)
    assert book.find(old.secret) is not None and book.find(new.secret) is not None
    clock.now = T0 + timedelta(hours=1)
    assert book.find(old.secret) is None and book.find(new.secret) is not None
    with pytest.raises(KeyRevokedAlready):
        await keys.rotate(old.key.key_id)


async def test_rotate_without_grace_revokes_the_old_key_at_once() -> None:
    store, clock = FakeKeyStore(), Clock()
    keys = make(store, clock)
    old = await keys.create(workspace="acme", scopes=("admin",))
    new = await keys.rotate(old.key.key_id)
    assert [type(e) for e in new.events] == [KeyIssued, KeyRevoked]  # the new key is accepted first
    book = book_of(store.events, clock)
    assert book.find(old.secret) is None and book.find(new.secret) is not None


async def test_revoke_unknown_and_repeated() -> None:
    store, clock = FakeKeyStore(), Clock()
    keys = make(store, clock)
    issued = await keys.create(workspace="acme", scopes=("links:read",))
    assert [type(e) for e in await keys.revoke(issued.key.key_id)] == [KeyRevoked]
    assert await keys.revoke(issued.key.key_id) == []
    assert book_of(store.events, clock).find(issued.secret) is None
    with pytest.raises(KeyNotFound):
        await keys.revoke("k_nope")
    with pytest.raises(KeyNotFound):
        await keys.rotate("k_nope")


async def test_the_local_admin_key_follows_its_file_and_is_idempotent() -> None:
    store, clock = FakeKeyStore(), Clock()
    keys = make(store, clock)
    [first] = await keys.ensure_local_admin("sk_local_one")
    assert isinstance(first, KeyIssued) and (first.key_id, first.workspace, first.scopes) == (
        LOCAL_ADMIN_KEY_ID,
        "default",
        ("admin",),
    )
    assert await keys.ensure_local_admin("sk_local_one") == []  # nothing changed: nothing written
    assert len(await keys.ensure_local_admin("sk_local_one", republish=True)) == 1  # the topic lacked it
    [changed] = await keys.ensure_local_admin("sk_local_two")  # the file's secret changed
    assert isinstance(changed, KeyIssued) and changed.digest == digest("sk_local_two")
    await keys.revoke(LOCAL_ADMIN_KEY_ID)
    assert len(await keys.ensure_local_admin("sk_local_two")) == 1  # `just up` brings it back
    with pytest.raises(InvalidInput) as refused:
        await keys.rotate(LOCAL_ADMIN_KEY_ID)
    assert refused.value.code == "key_reserved"


@pytest.mark.parametrize(
    ("text", "seconds"), [("45s", 45), ("30m", 1800), ("12h", 43200), ("90d", 7776000), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, field="--grace") == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0s", "1y", "h", "1.5h", "-1h", "", "1 h 2"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_duration(text, field="--expires-in")
    assert refused.value.code == "duration_invalid"
    assert parse_duration("0", field="--grace", allow_zero=True) == timedelta(0)


async def test_republish_restores_every_key_state_from_the_store() -> None:
    store, clock = FakeKeyStore(), Clock()
    keys = make(store, clock)
    live = await keys.create(workspace="acme", scopes=("links:read",))
    gone = await keys.create(workspace="acme", scopes=("links:read",))
    await keys.revoke(gone.key.key_id)
    events = await keys.republish()  # e.g. onto an empty topic
    assert sorted((type(e).__name__, e.key_id) for e in events) == sorted(
        [("KeyIssued", live.key.key_id), ("KeyRevoked", gone.key.key_id)]
    )
    book = book_of(events, clock)
    assert book.find(live.secret) is not None and book.find(gone.secret) is None
