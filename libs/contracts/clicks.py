"""Topic `clicks` (key = code, 3 partitions, 7-day retention = the replay horizon).

Producers: redirect (one LinkClicked per redirect served). Consumers: aggregator.
`event_id` is a UUIDv7 assigned once when the redirect is served, so every retry and
every replay of the same click carries the same id: the aggregator counts each id once.
No raw IP address appears here: `visitor_key` is a keyed hash that rotates daily.
"""

from datetime import datetime
from typing import Literal

import msgspec

from contracts.errors import InvalidEvent

Device = Literal["desktop", "mobile", "tablet", "bot", "other"]

UNKNOWN_COUNTRY = "ZZ"


class LinkClicked(msgspec.Struct, frozen=True, kw_only=True, tag="LinkClicked", tag_field="type"):
    schema_version: Literal[1] = 1
    event_id: str
    occurred_at: datetime
    code: str
    referrer: str | None = None
    user_agent: str = ""
    visitor_key: str
    device: Device = "other"
    is_bot: bool = False
    # ISO 3166-1 alpha-2 from a trusted edge header when present, else "ZZ" (unknown).
    country: str = UNKNOWN_COUNTRY


_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[LinkClicked] = msgspec.json.Decoder(LinkClicked)


def encode(event: LinkClicked) -> bytes:
    return _encoder.encode(event)


def decode(payload: bytes) -> LinkClicked:
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidEvent(f"clicks: {exc}") from exc


def key(event: LinkClicked) -> bytes:
    return event.code.encode()


EXAMPLES: tuple[bytes, ...] = (
    b'{"type":"LinkClicked","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8100",'
    b'"occurred_at":"2026-11-27T10:00:01.250Z","code":"aZ3kP9q","referrer":"https://news.example/",'
    b'"user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",'
    b'"visitor_key":"3f2a9c0d1e4b5a69","device":"mobile","is_bot":false,"country":"DE"}',
    b'{"type":"LinkClicked","schema_version":1,"event_id":"01890a5d-ac96-774b-bcce-b302099a8101",'
    b'"occurred_at":"2026-11-27T10:00:02Z","code":"aZ3kP9q","referrer":null,'
    b'"user_agent":"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",'
    b'"visitor_key":"9b1c7e2f00aa4d13","device":"bot","is_bot":true,"country":"ZZ"}',
)
