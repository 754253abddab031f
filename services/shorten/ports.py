"""The ports the use cases need; adapters implement them, unit tests fake them."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from contracts.keys import KeyEvent
from contracts.links import LinkCreated, LinkEvent

from shorten.domain.keys import ApiKey
from shorten.domain.listing import ListQuery
from shorten.domain.model import Link

Change = Callable[[Link], tuple[Link, LinkEvent]]
# The key as stored (None: no such key) -> the keys to store and the event of each.
KeyChange = Callable[[ApiKey | None], Sequence[tuple[ApiKey, KeyEvent]]]


class WriteVisibility(Protocol):
    """Waits (bounded) until the write whose event has this id is served by every redirect
    replica (service_layer/visibility.py); False when that could not be seen in time."""

    async def wait(self, event_id: str) -> bool: ...

    async def wait_all(self, event_ids: Sequence[str], *, timeout: float) -> bool:
        """The same for many writes at once (a bulk import), bounded by `timeout` in total."""


class LinkStore(Protocol):
    """Links and their outbox. Every write stores the row and its event in ONE transaction."""

    async def insert(self, link: Link, event: LinkCreated) -> bool:
        """Insert the link and its event; False (nothing written) when the code exists."""

    async def insert_many(self, rows: Sequence[tuple[Link, LinkCreated]]) -> Sequence[bool]:
        """Insert each link with its event, as ONE transaction for the rows whose codes are
        distinct (a code repeated in `rows` is tried again after the first one, so it finds it
        taken); per row, False (nothing written for it) when its code exists."""

    async def find(self, codes: Sequence[str], *, workspace: str) -> Sequence[Link]:
        """The links of `workspace` among `codes`, deleted ones included (as `get`, many at once)."""

    async def get(self, code: str, *, workspace: str) -> Link | None:
        """The link of `workspace`, deleted ones included; None when the code never existed or
        belongs to another workspace (the two must be indistinguishable)."""

    async def page(self, query: ListQuery) -> Sequence[Link]:
        """The workspace's live links matching the query, newest first, after `query.after`,
        at most `query.limit`."""

    async def modify(self, code: str, change: Change, *, workspace: str) -> Link:
        """Lock the row, compute (new state, event) with `change`, write both, commit.

        Raises LinkNotFound for an unknown code or another workspace's; whatever `change`
        raises aborts the write.
        """

    async def ping(self) -> None:
        """Raise when the store is unreachable (readiness)."""


class KeyStore(Protocol):
    """Workspaces and API keys (digests), with their `keys` events in the outbox."""

    async def list(self, workspace: str | None = None) -> Sequence[ApiKey]:
        """Every key (of `workspace`), oldest first."""

    async def write(self, key_id: str, change: KeyChange) -> Sequence[KeyEvent]:
        """Lock key_id's row, store what `change` returns (creating workspaces as needed) and
        its events, in one transaction; the events written."""


@dataclass(frozen=True, kw_only=True)
class OutboxRecord:
    id: int
    event_id: str
    code: str
    payload: bytes
    traceparent: str | None = None
    topic: str = "links"  # which of shorten's topics: "links" (key = code) or "keys" (key = key id)


class Outbox(Protocol):
    """The relay's view of the outbox table (one connection, held by the active relay)."""

    async def fetch_unpublished(self, limit: int, *, mark_first: Sequence[int] = ()) -> Sequence[OutboxRecord]:
        """Mark `mark_first` published (acknowledged earlier), then return the oldest `limit`
        other unpublished records, in outbox id order: one round trip for both."""

    async def mark_published(self, ids: Sequence[int]) -> None:
        """Record that the broker acknowledged these records."""

    async def purge_published(self, older_than_seconds: float) -> int:
        """Delete records published more than `older_than_seconds` ago; return how many."""


class PublishFailed(Exception):
    """The broker did not acknowledge every record; the first `acked` ones were acknowledged."""

    def __init__(self, message: str, *, acked: int) -> None:
        super().__init__(message)
        self.acked = acked


class Publisher(Protocol):
    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        """Send records in order (key = code) and wait for the broker's acks.

        Raises PublishFailed(acked=n) when only the first n were acknowledged.
        """


# Read your writes (service_layer/visibility.py): where events land in `links`, where replicas stand.


class Placed(NamedTuple):
    """Where an event landed in `links`."""

    event_id: str
    partition: int
    offset: int


class ReplicaPosition(NamedTuple):
    reported_at: float  # epoch seconds
    offsets: Mapping[int, int]  # partition -> next offset the replica serves from


class LinksLog(Protocol):
    async def start(self) -> None:
        """Position at the end of every partition (events from now on are read)."""

    async def fetch(self, *, timeout_ms: int) -> Sequence[Placed]: ...

    async def stop(self) -> None: ...
