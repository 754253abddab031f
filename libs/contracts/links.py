"""Topic `links` (key = code, compacted).

Producers: shorten (outbox relay). Consumers: redirect (read model in Redis + L1).
The value is one of LinkCreated, LinkUpdated, LinkDeleted, tagged by `type`.
Version 1. A new incompatible shape gets a new `schema_version` and a new type.
"""

from datetime import datetime
from typing import Literal

import msgspec

from contracts.errors import InvalidEvent

RedirectType = Literal[301, 302]


class LinkCreated(msgspec.Struct, frozen=True, kw_only=True, tag="LinkCreated", tag_field="type"):
    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str
    url: str
    redirect_type: RedirectType = 302
    expires_at: datetime | None = None
    max_clicks: int | None = None


class LinkUpdated(msgspec.Struct, frozen=True, kw_only=True, tag="LinkUpdated", tag_field="type"):
    """Carries the full new state of the link, so a compacted topic stays self-contained."""

    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str
    url: str
    redirect_type: RedirectType = 302
    expires_at: datetime | None = None
    max_clicks: int | None = None


class LinkDeleted(msgspec.Struct, frozen=True, kw_only=True, tag="LinkDeleted", tag_field="type"):
    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str


LinkEvent = LinkCreated | LinkUpdated | LinkDeleted

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[LinkEvent] = msgspec.json.Decoder(LinkEvent)


def encode(event: LinkEvent) -> bytes:
    return _encoder.encode(event)


def decode(payload: bytes) -> LinkEvent:
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise InvalidEvent(f"links: {exc}") from exc


def key(event: LinkEvent) -> bytes:
    return event.code.encode()


EXAMPLES: tuple[bytes, ...] = (
    b'{"type":"LinkCreated","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8057",'
    b'"occurred_at":"2026-11-27T10:00:00Z","code":"aZ3kP9q","url":"https://example.com/a",'
    b'"redirect_type":302,"expires_at":null,"max_clicks":null}',
    b'{"type":"LinkUpdated","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8058",'
    b'"occurred_at":"2026-11-27T10:05:00Z","code":"aZ3kP9q","url":"https://example.org/b",'
    b'"redirect_type":301,"expires_at":"2027-01-01T00:00:00Z","max_clicks":100}',
    b'{"type":"LinkDeleted","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8059",'
    b'"occurred_at":"2026-11-27T10:10:00Z","code":"aZ3kP9q"}',
)
