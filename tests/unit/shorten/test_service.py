"""Use cases against a fake LinkStore: every write produces its event, codes never reused."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from contracts.links import LinkCreated, LinkDeleted, LinkUpdated
from shorten.domain.errors import AliasTaken, CodeSpaceExhausted, LinkGone, LinkNotFound
from shorten.domain.model import CreateLink, LinkChanges
from shorten.service import MAX_CODE_ATTEMPTS, LinkService, new_event_id

from tests.unit.shorten.fakes import FakeLinkStore

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def ids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"event-{n}"


def make(store: FakeLinkStore, codes: list[str] | None = None) -> LinkService:
    event_ids = ids()
    scripted = iter(codes or [])
    return LinkService(
        store=store,
        clock=Clock(),
        event_ids=lambda: next(event_ids),
        codes=(lambda n: next(scripted)) if codes else (lambda n: "generated"[:n].ljust(n, "x")),
    )


async def test_create_stores_link_and_its_created_event() -> None:
    store = FakeLinkStore()
    link = await make(store, ["Abc1234x"]).create(CreateLink(url="https://e.com", max_clicks=3))
    assert link.code == "Abc1234x" and store.links["Abc1234x"] == link
    assert store.events == [
        LinkCreated(
            event_id="event-1",
            occurred_at=link.created_at,
            code="Abc1234x",
            url="https://e.com",
            redirect_type=302,
            max_clicks=3,
        )
    ]


async def test_generated_code_collision_retries_with_a_new_code() -> None:
    store = FakeLinkStore()
    service = make(store, ["Taken001", "Taken001", "Fresh002"])
    await service.create(CreateLink(url="https://one.example"))
    link = await service.create(CreateLink(url="https://two.example"))
    assert link.code == "Fresh002"
    assert store.links["Taken001"].url == "https://one.example"  # the winner is untouched
    assert [e.code for e in store.events] == ["Taken001", "Fresh002"]


async def test_gives_up_after_bounded_attempts() -> None:
    store = FakeLinkStore()
    service = make(store, ["Same0000"] * (MAX_CODE_ATTEMPTS + 1))
    await service.create(CreateLink(url="https://e.com"))
    with pytest.raises(CodeSpaceExhausted):
        await service.create(CreateLink(url="https://e.com"))
    assert len(store.events) == 1


async def test_alias_taken_is_a_conflict_not_a_retry() -> None:
    store = FakeLinkStore()
    service = make(store)
    await service.create(CreateLink(url="https://a.example", alias="promo"))
    with pytest.raises(AliasTaken) as info:
        await service.create(CreateLink(url="https://b.example", alias="promo"))
    assert info.value.field == "alias"
    assert store.links["promo"].url == "https://a.example" and len(store.events) == 1


async def test_update_writes_full_new_state_in_its_event() -> None:
    store = FakeLinkStore()
    service = make(store)
    created = await service.create(CreateLink(url="https://a.example", alias="upd", max_clicks=9))
    expiry = T0 + timedelta(days=30)
    updated = await service.update("upd", LinkChanges(redirect_type=301, expires_at=expiry))
    assert (updated.url, updated.redirect_type, updated.expires_at, updated.max_clicks) == (
        "https://a.example", 301, expiry, 9,
    )  # fmt: skip
    assert updated.created_at == created.created_at < updated.updated_at
    assert store.events[-1] == LinkUpdated(
        event_id="event-2",
        occurred_at=updated.updated_at,
        code="upd",
        url="https://a.example",
        redirect_type=301,
        expires_at=expiry,
        max_clicks=9,
    )


async def test_update_can_clear_limits() -> None:
    store = FakeLinkStore()
    service = make(store)
    await service.create(
        CreateLink(url="https://a.example", alias="clr", max_clicks=9, expires_at=T0 + timedelta(days=1))
    )
    updated = await service.update("clr", LinkChanges(max_clicks=None, expires_at=None))
    assert updated.max_clicks is None and updated.expires_at is None


async def test_delete_is_soft_and_the_code_is_never_reused() -> None:
    store = FakeLinkStore()
    service = make(store)
    await service.create(CreateLink(url="https://a.example", alias="gone"))
    await service.delete("gone")
    deleted = store.links["gone"]
    assert deleted.deleted_at is not None
    assert store.events[-1] == LinkDeleted(event_id="event-2", occurred_at=deleted.deleted_at, code="gone")
    with pytest.raises(LinkGone):
        await service.get("gone")
    with pytest.raises(LinkGone):
        await service.update("gone", LinkChanges(url="https://b.example"))
    with pytest.raises(LinkGone):
        await service.delete("gone")
    with pytest.raises(AliasTaken):
        await service.create(CreateLink(url="https://b.example", alias="gone"))
    assert len(store.events) == 2  # the refused writes wrote no event


async def test_unknown_codes() -> None:
    service = make(FakeLinkStore())
    with pytest.raises(LinkNotFound):
        await service.get("nope123")
    with pytest.raises(LinkNotFound):
        await service.update("nope123", LinkChanges(url="https://b.example"))
    with pytest.raises(LinkNotFound):
        await service.delete("nope123")


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    first, second = new_event_id(), new_event_id()
    assert first[14] == "7" and second[14] == "7"  # version nibble

    def millis(event_id: str) -> int:
        return int(event_id.replace("-", ""), 16) >> 80

    assert millis(first) <= millis(second)
