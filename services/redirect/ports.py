"""The ports the redirect service's use cases talk through, and the records that cross them.
Adapters implement them; unit tests use fakes of these (our own ports), integration tests the
real Redis and Kafka adapters."""

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from platformkit.failures import StoreUnavailable

from redirect.domain.batches import ClickBatch
from redirect.domain.links import Link

# The read model (Redis) cannot be reached: the one StoreUnavailable of every service, translated
# from the driver's error at the adapter (the hot path answers it from its own prebuilt 503).
__all__ = [
    "Applied",
    "Change",
    "ClickSink",
    "HotCounter",
    "LinkGetter",
    "LinkReader",
    "LinkStore",
    "LinksSource",
    "PublishFailed",
    "ReadModelWriter",
    "Record",
    "SeenReport",
    "StoreUnavailable",
]


class PublishFailed(Exception):
    """Click batches were not acknowledged by Kafka (or it could not be reached); they are kept
    as they are and re-sent."""


class LinkReader(Protocol):
    """What the request path and the cache warmer read."""

    async def get(self, code: str) -> Link: ...

    async def get_many(self, codes: Sequence[str]) -> list[Link]: ...

    async def try_click(self, code: str, max_clicks: int) -> bool: ...

    async def clicks_used(self, code: str) -> int: ...

    async def hottest(self, count: int) -> list[str]: ...


class HotCounter(Protocol):
    async def bump_hot(self, counts: Mapping[str, int], *, keep: int | None = None) -> None: ...


class ClickSink(Protocol):
    """Delivers formed click batches to the `clicks` topic, each as one record on its partition."""

    async def partitioner(self) -> Callable[[str], int]:
        """code -> partition of the topic, as Kafka's default partitioner places that key (the
        partition count comes from the producer's metadata). Raises PublishFailed."""
        ...

    async def publish(self, batches: Sequence[ClickBatch]) -> None:
        """Return when Kafka acknowledged every batch; raise PublishFailed otherwise (the caller
        keeps them all, unchanged, and re-sends them: their batch ids make a re-send harmless)."""
        ...

    async def warm_up(self) -> None:
        """Connect ahead of the first publish (a failure is logged, not raised: publishes retry)."""
        ...

    async def aclose(self) -> None: ...


class LinkGetter(Protocol):
    """What the read coalescer needs from the store (a subset of LinkReader)."""

    async def get(self, code: str) -> Link: ...

    async def get_many(self, codes: Sequence[str]) -> list[Link]: ...


class Record(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # The producer's trace context (traceparent) travels in the message headers.
    headers: tuple[tuple[str, bytes], ...] = ()


class Change(NamedTuple):
    """One `links` record to apply: `link` None means poison (only the offset advances)."""

    partition: int
    offset: int
    code: str
    link: Link | None
    # The consumer's position in the partition before this record (0: no claim, e.g. a replay).
    after: int = 0


class SeenReport(NamedTuple):
    """`replica` holds every `links` event before `offsets` (partition -> next offset)."""

    replica: str
    offsets: Mapping[int, int]

    def fields(self) -> dict[Any, Any]:  # redis-py types mapping keys invariantly
        out: dict[Any, Any] = {f"{self.replica}:{p}": o for p, o in self.offsets.items()}
        out[f"{self.replica}:at"] = int(time.time() * 1000)
        return out


class Applied(NamedTuple):
    advanced: bool  # this call moved the partition's offset (first replica to apply it)
    written: bool  # the link hash was replaced (the event was newer than what Redis had)
    gap: bool = False  # Redis stands before `Change.after`: it lost applied events


class LinksSource(Protocol):
    """The `links` topic as the projector reads it: every partition, from given offsets."""

    @property
    def partitions(self) -> list[int]: ...

    async def start(self, offsets: Mapping[int, int]) -> dict[int, int]: ...

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]: ...

    def highwater(self, partition: int) -> int | None: ...

    async def stop(self) -> None: ...


class ReadModelWriter(Protocol):
    """The read model (Redis) as the projector writes it: offset-guarded applies."""

    async def apply(self, changes: Sequence[Change], *, seen: SeenReport | None = None) -> list[Applied]: ...

    async def report_seen(self, seen: SeenReport) -> None: ...

    async def offsets(self) -> dict[int, int]: ...


class LinkStore(LinkReader, HotCounter, ReadModelWriter, Protocol):
    """The whole read model as one replica holds it (RedisLinkStore): reads, click limits, the
    hot set, the projector's applies; and its health and lifetime."""

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
