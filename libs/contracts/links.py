"""Topic `links` (key = code, compacted).

Producers: shorten (outbox relay). Consumers: redirect (read model in Redis + L1), aggregator
(which codes exist, their workspace and whether their stats are public, for analytics).
The value is one of LinkCreated, LinkUpdated, LinkDeleted, tagged by `type`.
Version 1. A new incompatible shape gets a new `schema_version` and a new type; fields added
with a default (workspace, public_stats, tags) keep version 1: older events decode with the
default, and consumers ignore fields they do not know.
"""

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contracts.errors import InvalidEvent

RedirectType = Literal[301, 302]

# Workspaces are slugs (`acme`, `team-7`); links from before workspaces belong to `default`.
DEFAULT_WORKSPACE = "default"
Workspace = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f,]+$")]
Tags = Annotated[tuple[Tag, ...], msgspec.Meta(max_length=20)]


class LinkState(msgspec.Struct, frozen=True, kw_only=True):
    """The full state of a link, as created or as updated: each event carries all of it, so the
    compacted topic stays self-contained (the newest event per code is the link)."""

    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str
    url: str
    redirect_type: RedirectType = 302
    expires_at: datetime | None = None
    max_clicks: int | None = None
    workspace: Workspace = DEFAULT_WORKSPACE
    public_stats: bool = False  # anyone may read the link's stats (the "+" page)
    tags: Tags = ()


class LinkCreated(LinkState, frozen=True, kw_only=True, tag="LinkCreated", tag_field="type"):
    pass


class LinkUpdated(LinkState, frozen=True, kw_only=True, tag="LinkUpdated", tag_field="type"):
    pass


class LinkDeleted(msgspec.Struct, frozen=True, kw_only=True, tag="LinkDeleted", tag_field="type"):
    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str
    workspace: Workspace = DEFAULT_WORKSPACE


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
    b'"redirect_type":301,"expires_at":"2027-01-01T00:00:00Z","max_clicks":100,"workspace":"acme",'
    b'"public_stats":true,"tags":["launch","q4"]}',
    b'{"type":"LinkDeleted","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8059",'
    b'"occurred_at":"2026-11-27T10:10:00Z","code":"aZ3kP9q"}',
)
