"""Use cases against a fake LinkStore: every write produces its event, codes never reused."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from contracts.links import LinkCreated, LinkDeleted, LinkUpdated
from shorten.domain.errors import AliasTaken, CodeSpaceExhausted, LinkGone, LinkNotFound
from shorten.domain.model import CreateLink, LinkChanges
from shorten.service_layer.link_service import MAX_CODE_ATTEMPTS, LinkService, new_event_id

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
    updated = await service.update("upd", LinkChanges(redirect_type=301, expires_at=expiry), workspace="default")
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
    updated = await service.update("clr", LinkChanges(max_clicks=None, expires_at=None), workspace="default")
    assert updated.max_clicks is None and updated.expires_at is None


async def test_delete_is_soft_and_the_code_is_never_reused() -> None:
    store = FakeLinkStore()
    service = make(store)
    await service.create(CreateLink(url="https://a.example", alias="gone"))
    await service.delete("gone", workspace="default")
    deleted = store.links["gone"]
    assert deleted.deleted_at is not None
    assert store.events[-1] == LinkDeleted(event_id="event-2", occurred_at=deleted.deleted_at, code="gone")
    with pytest.raises(LinkGone):
        await service.get("gone", workspace="default")
    with pytest.raises(LinkGone):
        await service.update("gone", LinkChanges(url="https://b.example"), workspace="default")
    with pytest.raises(LinkGone):
        await service.delete("gone", workspace="default")
    with pytest.raises(AliasTaken):
        await service.create(CreateLink(url="https://b.example", alias="gone"))
    assert len(store.events) == 2  # the refused writes wrote no event


async def test_unknown_codes() -> None:
    service = make(FakeLinkStore())
    with pytest.raises(LinkNotFound):
        await service.get("nope123", workspace="default")
    with pytest.raises(LinkNotFound):
        await service.update("nope123", LinkChanges(url="https://b.example"), workspace="default")
    with pytest.raises(LinkNotFound):
        await service.delete("nope123", workspace="default")


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    first, second = new_event_id(), new_event_id()
    assert first[14] == "7" and second[14] == "7"  # version nibble

    def millis(event_id: str) -> int:
        return int(event_id.replace("-", ""), 16) >> 80

    assert millis(first) <= millis(second)


async def test_another_workspaces_link_is_not_found_like_a_code_that_does_not_exist() -> None:
    store = FakeLinkStore()
    service = make(store)
    await service.create(CreateLink(url="https://a.example", alias="theirs", workspace="acme", tags=("x",)))
    await service.create(CreateLink(url="https://a.example", alias="gone-theirs", workspace="acme"))
    await service.delete("gone-theirs", workspace="acme")
    for code in ("theirs", "gone-theirs", "never-was"):  # a deleted link of theirs is 404 too, not 410
        with pytest.raises(LinkNotFound) as read:
            await service.get(code, workspace="default")
        with pytest.raises(LinkNotFound) as change:
            await service.update(code, LinkChanges(url="https://b.example"), workspace="default")
        with pytest.raises(LinkNotFound) as delete:
            await service.delete(code, workspace="default")
        assert {str(read.value), str(change.value), str(delete.value)} == {f"no link {code!r}"}
    assert store.links["theirs"].url == "https://a.example" and store.links["theirs"].deleted_at is None
    # Aliases stay one global space: a taken alias of another workspace is still taken.
    with pytest.raises(AliasTaken):
        await service.create(CreateLink(url="https://b.example", alias="theirs"))


async def test_tags_and_public_stats_are_kept_changed_and_carried_on_the_events() -> None:
    store = FakeLinkStore()
    service = make(store)
    await service.create(
        CreateLink(url="https://a.example", alias="tagged", workspace="acme", public_stats=True, tags=("launch", "q4"))
    )
    created = store.events[-1]
    assert isinstance(created, LinkCreated)
    assert (created.workspace, created.public_stats, created.tags) == ("acme", True, ("launch", "q4"))
    updated = await service.update("tagged", LinkChanges(tags=(), public_stats=False), workspace="acme")
    assert (updated.tags, updated.public_stats) == ((), False)
    event = store.events[-1]
    assert isinstance(event, LinkUpdated) and (event.workspace, event.public_stats, event.tags) == ("acme", False, ())
    await service.delete("tagged", workspace="acme")
    assert isinstance(store.events[-1], LinkDeleted) and store.events[-1].workspace == "acme"
