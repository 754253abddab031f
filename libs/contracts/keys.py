"""Topic `keys` (key = key_id, compacted): the API keys of every workspace.

Producer: shorten (keys are created, rotated and revoked with `just keys`, written to shorten's
database and published through its outbox). Consumers: every service that authenticates API
calls (shorten, analytics) keeps the newest event per key in memory and checks callers against it.

A key is stored and published only as the SHA-256 digest of its secret (`platformkit.apikeys`):
the secret is shown once, at creation, and exists nowhere else. API keys are random 256-bit
strings, so a fast digest is enough (no password hashing: there is nothing to brute-force).
The value is one of KeyIssued, KeyRevoked, tagged by `type`. Version 1.
"""

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from contracts.errors import InvalidEvent
from contracts.links import Workspace

# What a key may do, always inside its own workspace. `admin` implies every other scope and
# may manage the workspace's keys.
Scope = Literal["links:read", "links:write", "stats:read", "admin"]
SCOPES: tuple[Scope, ...] = ("links:read", "links:write", "stats:read", "admin")

KeyId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{4,40}$")]
Digest = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class KeyIssued(msgspec.Struct, frozen=True, kw_only=True, tag="KeyIssued", tag_field="type"):
    """A key exists with these scopes; issued again (same key_id) when its expiry changes, e.g.
    the old key of a rotation that keeps working for a grace period."""

    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    key_id: KeyId
    workspace: Workspace
    scopes: Annotated[tuple[Scope, ...], msgspec.Meta(min_length=1)]
    digest: Digest  # hex SHA-256 of the secret
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    expires_at: datetime | None = None  # refused from this instant on


class KeyRevoked(msgspec.Struct, frozen=True, kw_only=True, tag="KeyRevoked", tag_field="type"):
    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    key_id: KeyId
    workspace: Workspace


KeyEvent = KeyIssued | KeyRevoked

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[KeyEvent] = msgspec.json.Decoder(KeyEvent)


def encode(event: KeyEvent) -> bytes:
    return _encoder.encode(event)


def decode(payload: bytes) -> KeyEvent:
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise InvalidEvent(f"keys: {exc}") from exc


def key(event: KeyEvent) -> bytes:
    return event.key_id.encode()


EXAMPLES: tuple[bytes, ...] = (
    b'{"type":"KeyIssued","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8301",'
    b'"occurred_at":"2026-11-30T10:00:00Z","key_id":"k_7Hq2mZ","workspace":"acme",'
    b'"scopes":["links:write","stats:read"],'
    b'"digest":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",'
    b'"name":"ci deploys","expires_at":null}',
    b'{"type":"KeyRevoked","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8302",'
    b'"occurred_at":"2026-11-30T11:00:00Z","key_id":"k_7Hq2mZ","workspace":"acme"}',
)
