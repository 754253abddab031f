"""In-memory fakes of the shorten service's own ports (LinkStore, Outbox, Publisher)."""

from collections.abc import Sequence

from contracts.links import LinkCreated, LinkEvent
from shorten.domain.errors import LinkNotFound
from shorten.domain.listing import ListQuery
from shorten.domain.model import Link
from shorten.ports import Change, OutboxRecord, PublishFailed


class FakeLinkStore:
    """Same contract as PostgresLinkStore: row and event are written together or not at all."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.events: list[LinkEvent] = []
        self.chunks: list[int] = []  # rows per insert_many call

    async def insert(self, link: Link, event: LinkCreated) -> bool:
        if link.code in self.links:
            return False
        self.links[link.code] = link
        self.events.append(event)
        return True

    async def insert_many(self, rows: Sequence[tuple[Link, LinkCreated]]) -> list[bool]:
        self.chunks.append(len(rows))
        return [await self.insert(link, event) for link, event in rows]

    async def find(self, codes: Sequence[str], *, workspace: str) -> list[Link]:
        return [link for code in dict.fromkeys(codes) if (link := self.links.get(code)) and link.workspace == workspace]

    async def get(self, code: str, *, workspace: str) -> Link | None:
        link = self.links.get(code)
        return link if link is not None and link.workspace == workspace else None

    async def page(self, query: ListQuery) -> Sequence[Link]:
        raise NotImplementedError("listing is tested against PostgreSQL (tests/integration/shorten)")

    async def modify(self, code: str, change: Change, *, workspace: str) -> Link:
        if code not in self.links or self.links[code].workspace != workspace:
            raise LinkNotFound(f"no link {code!r}", field="code")
        link, event = change(self.links[code])
        self.links[code] = link
        self.events.append(event)
        return link

    async def ping(self) -> None:
        return None


class FakeOutbox:
    def __init__(self, count: int = 0) -> None:
        self.records = [
            OutboxRecord(id=i, event_id=f"e{i}", code=f"c{i % 3}", payload=b"p%d" % i) for i in range(1, count + 1)
        ]
        self.published: list[int] = []
        self.separate_marks = 0  # mark_published calls (marks riding on a read are not counted)
        self.purged_with: list[float] = []

    def add(self, n: int) -> None:
        start = len(self.records) + 1
        for i in range(start, start + n):
            self.records.append(OutboxRecord(id=i, event_id=f"e{i}", code=f"c{i % 3}", payload=b"p%d" % i))

    async def fetch_unpublished(self, limit: int, *, mark_first: Sequence[int] = ()) -> Sequence[OutboxRecord]:
        self._mark(mark_first)
        done = set(self.published)
        return [r for r in self.records if r.id not in done][:limit]

    async def mark_published(self, ids: Sequence[int]) -> None:
        self.separate_marks += 1
        self._mark(ids)

    def _mark(self, ids: Sequence[int]) -> None:
        assert not set(ids) & set(self.published), "marked twice"
        self.published.extend(ids)

    async def purge_published(self, older_than_seconds: float) -> int:
        self.purged_with.append(older_than_seconds)
        return 0


class FakePublisher:
    """Records what the broker acknowledged; `failures` scripts the next publish calls:
    an int n means "ack the first n records of that call, then fail"."""

    def __init__(self, failures: Sequence[int] = ()) -> None:
        self.acked: list[OutboxRecord] = []
        self.batches: list[list[OutboxRecord]] = []
        self.calls = 0
        self._failures = list(failures)

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        self.calls += 1
        self.batches.append(list(records))
        if self._failures:
            n = self._failures.pop(0)
            self.acked.extend(records[:n])
            raise PublishFailed("broker unavailable", acked=n)
        self.acked.extend(records)
