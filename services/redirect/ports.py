"""The ports the redirect service's core talks through. Adapters implement them; unit tests use
fakes of these (our own ports), integration tests the real Redis and Kafka adapters."""

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from platformkit.failures import StoreUnavailable

from redirect.domain.batches import ClickBatch
from redirect.domain.links import Link

# The read model (Redis) cannot be reached: the one StoreUnavailable of every service, translated
# from the driver's error at the adapter (the hot path answers it from its own prebuilt 503).
__all__ = ["ClickSink", "HotCounter", "LinkReader", "PublishFailed", "StoreUnavailable"]


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

    async def aclose(self) -> None: ...
