"""The ports the redirect service's core talks through. Adapters implement them; unit tests use
fakes of these (our own ports), integration tests the real Redis and Kafka adapters."""

from collections.abc import Mapping, Sequence
from typing import Protocol

from redirect.domain.links import Link

# An encoded click event: (key, value, timestamp ms, Kafka headers with the trace context or None).
EncodedClick = tuple[bytes, bytes, int, list[tuple[str, bytes]] | None]


class StoreUnavailable(Exception):
    """The read model (Redis) cannot be reached; translated from the driver's error."""


class PublishFailed(Exception):
    """A batch of click events was not acknowledged by Kafka; it is kept and retried."""


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
    """Delivers encoded click events `(key, value, timestamp_ms)` to the `clicks` topic."""

    async def publish(self, events: Sequence[EncodedClick]) -> None:
        """Return when Kafka acknowledged every event; raise PublishFailed otherwise (the caller
        keeps them all and retries: event ids make a resend harmless)."""
        ...

    async def aclose(self) -> None: ...
