"""Fakes of the redirect service's own ports (LinkReader/Writer, ClickSink, the links Reader)."""

from collections.abc import Callable, Mapping, Sequence

from contracts import clicks
from redirect.adapters.kafka_clicks import partition_for
from redirect.domain.batches import ClickBatch
from redirect.domain.links import NOT_FOUND, Link
from redirect.ports import Applied, Change, PublishFailed, Record, SeenReport, StoreUnavailable


class FakeStore:
    """In-memory read model with the same offset guard as the Lua script."""

    def __init__(self) -> None:
        self.links: dict[str, Link] = {}
        self.offsets_: dict[int, int] = {}
        self.clicks: dict[str, int] = {}
        self.hot: dict[str, int] = {}
        self.calls: list[str] = []
        self.down = False
        self.closed = False
        self.seen: dict[str, dict[int, int]] = {}

    def _check(self, call: str) -> None:
        self.calls.append(call)
        if self.down:
            raise StoreUnavailable("fake redis is down")

    async def ping(self) -> None:
        self._check("ping")

    async def aclose(self) -> None:
        self.closed = True

    async def get(self, code: str) -> Link:
        self._check(f"get:{code}")
        return self.links.get(code, NOT_FOUND)

    async def get_many(self, codes: Sequence[str]) -> list[Link]:
        self._check("get_many")
        return [self.links.get(c, NOT_FOUND) for c in codes]

    async def try_click(self, code: str, max_clicks: int) -> bool:
        self._check(f"try_click:{code}")
        if self.clicks.get(code, 0) >= max_clicks:
            return False
        self.clicks[code] = self.clicks.get(code, 0) + 1
        return True

    async def clicks_used(self, code: str) -> int:
        self._check(f"clicks_used:{code}")
        return self.clicks.get(code, 0)

    async def hottest(self, count: int) -> list[str]:
        self._check("hottest")
        return sorted(self.hot, key=lambda c: -self.hot[c])[:count]

    async def bump_hot(self, counts: Mapping[str, int], *, keep: int | None = None) -> None:
        self._check("bump_hot")
        for code, n in counts.items():
            self.hot[code] = self.hot.get(code, 0) + n

    async def apply(self, changes: Sequence[Change], *, seen: SeenReport | None = None) -> list[Applied]:
        self._check("apply")
        out = []
        for ch in changes:
            gap = self.offsets_.get(ch.partition, 0) < ch.after
            advanced = not gap and self.offsets_.get(ch.partition, 0) <= ch.offset
            if advanced:
                self.offsets_[ch.partition] = ch.offset + 1
            written = False
            if ch.link is not None:
                stored = self.links.get(ch.code)
                if stored is None or stored.offset < ch.offset:
                    self.links[ch.code] = ch.link
                    written = True
            out.append(Applied(advanced=advanced, written=written, gap=gap))
        if seen is not None:
            self.seen[seen.replica] = dict(seen.offsets)
        return out

    async def report_seen(self, seen: SeenReport) -> None:
        self._check("report_seen")
        self.seen[seen.replica] = dict(seen.offsets)

    async def offsets(self) -> dict[int, int]:
        self._check("offsets")
        return dict(self.offsets_)


class FakeSink:
    """Records published click batches; `fail_next` makes the next publishes fail, `down` also
    makes the partition count unknown (Kafka unreachable since start)."""

    def __init__(self, partitions: int = 3) -> None:
        self.partitions = partitions
        self.batches: list[ClickBatch] = []
        self.attempts: list[list[ClickBatch]] = []
        self.fail_next = 0
        self.down = False
        self.closed = False

    @property
    def clicks(self) -> list[clicks.Click]:
        """Every click delivered, in publish order."""
        return [c for b in self.batches for c in decode(b).clicks]

    async def partitioner(self) -> Callable[[str], int]:
        if self.down:
            raise PublishFailed("fake kafka is unreachable")
        n = self.partitions
        return lambda code: partition_for(code.encode(), n)

    async def publish(self, batches: Sequence[ClickBatch]) -> None:
        self.attempts.append(list(batches))
        if self.down or self.fail_next:
            self.fail_next = max(0, self.fail_next - 1)
            raise PublishFailed("fake kafka is down")
        self.batches.extend(batches)

    async def warm_up(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


def decode(batch: ClickBatch) -> clicks.ClicksBatched:
    record = clicks.decode(batch.value)
    assert isinstance(record, clicks.ClicksBatched)
    return record


class FakeReader:
    """A links topic in memory: `records` per partition; fetch returns what is past the position."""

    def __init__(self, records: Sequence[Record], partitions: Sequence[int] = (0, 1, 2)) -> None:
        self.records = list(records)
        self._partitions = list(partitions)
        self.position: dict[int, int] = {}
        self.stopped = False

    @property
    def partitions(self) -> list[int]:
        return self._partitions

    def _end(self, p: int) -> int:
        return max((r.offset + 1 for r in self.records if r.partition == p), default=0)

    async def start(self, offsets: Mapping[int, int]) -> dict[int, int]:
        self.position = {p: offsets.get(p, 0) for p in self._partitions}
        return {p: self._end(p) for p in self._partitions}

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        out = [r for r in self.records if r.offset >= self.position[r.partition]][:max_records]
        for r in out:
            self.position[r.partition] = max(self.position[r.partition], r.offset + 1)
        return out

    def highwater(self, partition: int) -> int | None:
        return self._end(partition)

    async def stop(self) -> None:
        self.stopped = True
