"""From a raw `clicks` record to a sink row, or to a named reason why it is poison.

Pure: `decode_record` takes bytes and the current time and returns a `ClickRow` or raises
`PoisonMessage`. The sinks store rows; the pipeline dead-letters poison with its reason.
"""

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import msgspec
from contracts import InvalidEvent, clicks

CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
MAX_REFERRER = 1024
MAX_USER_AGENT = 512
MAX_VISITOR_KEY = 128


class PoisonMessage(ValueError):
    """A record that can never be counted: undecodable, wrong schema or version, or invalid."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ClickRow(msgspec.Struct, frozen=True, kw_only=True):
    """One deduplicable click, as both sinks store it (field names = ClickHouse columns)."""

    event_id: str  # canonical lowercase UUID text
    code: str
    occurred_at: int  # Unix seconds (UTC); ClickHouse DateTime takes it as is
    visitor_key: str
    referrer: str
    referrer_host: str
    country: str
    device: str
    is_bot: int  # 0/1, ClickHouse UInt8

    def occurred(self) -> datetime:
        return datetime.fromtimestamp(self.occurred_at, UTC)


def referrer_host(referrer: str | None) -> str:
    """The referrer's host in lower case without `www.`; "" for direct traffic or junk."""
    if not referrer:
        return ""
    try:
        host = urlsplit(referrer.strip()).hostname or ""
    except ValueError:
        return ""
    host = host.lower()
    return host[4:] if host.startswith("www.") else host[:253]


def normalise_country(country: str) -> str:
    upper = country.strip().upper()
    return upper if _COUNTRY_RE.fullmatch(upper) else clicks.UNKNOWN_COUNTRY


def _utc(moment: datetime) -> datetime:
    # A naive timestamp is taken as UTC: the contract's producers emit UTC ("Z").
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_row(event: clicks.LinkClicked, *, now: datetime, horizon: timedelta, max_skew: timedelta) -> ClickRow:
    """Validate what the schema cannot express and normalise the event into a sink row."""
    try:
        event_id = str(uuid.UUID(event.event_id))
    except ValueError as exc:
        raise PoisonMessage(f"clicks: event_id is not a UUID: {event.event_id[:80]!r}") from exc
    if not CODE_RE.fullmatch(event.code):
        raise PoisonMessage(f"clicks: code is not 1-64 chars of A-Z a-z 0-9 _ -: {event.code[:80]!r}")
    if not event.visitor_key or len(event.visitor_key) > MAX_VISITOR_KEY:
        raise PoisonMessage("clicks: visitor_key must be 1-128 characters")
    occurred = _utc(event.occurred_at)
    if occurred < now - horizon:
        raise PoisonMessage(
            f"clicks: occurred_at {occurred.isoformat()} is older than the dedup horizon ({horizon})"
        )
    if occurred > now + max_skew:
        raise PoisonMessage(f"clicks: occurred_at {occurred.isoformat()} is in the future")
    return ClickRow(
        event_id=event_id,
        code=event.code,
        occurred_at=int(occurred.timestamp()),
        visitor_key=event.visitor_key,
        referrer=(event.referrer or "")[:MAX_REFERRER],
        referrer_host=referrer_host(event.referrer),
        country=normalise_country(event.country),
        device=event.device,
        is_bot=1 if event.is_bot else 0,
    )


def decode_record(
    value: bytes | None, *, now: datetime, horizon: timedelta, max_skew: timedelta
) -> ClickRow:
    """Bytes from the topic -> row. Raises PoisonMessage with the reason."""
    if value is None:
        raise PoisonMessage("clicks: empty record (tombstone)")
    try:
        event = clicks.decode(value)
    except InvalidEvent as exc:
        raise PoisonMessage(exc.reason) from exc
    return to_row(event, now=now, horizon=horizon, max_skew=max_skew)
