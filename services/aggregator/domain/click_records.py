"""From a raw `clicks` record to sink rows, or to a named reason why it is poison. Pure.

A record is either a `ClicksBatched` (one record per partition batch of clicks, the current
format) or a single `LinkClicked` (the previous format, still accepted within the replay
horizon). `decode_record` turns either into a `ClickRecord`: the id the sinks deduplicate on
(`contracts.clicks.record_id`), its clicks as sink rows, and the newest click's time (what the
dedup horizon is judged on). A record is counted whole or not at all: one invalid click makes
the whole record poison (dead-lettered verbatim with the reason; nothing is lost).
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

import msgspec
from contracts import InvalidEvent, clicks
from contracts.links import CODE_RE

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
    """One click, as both sinks store it (field names = ClickHouse columns)."""

    # A batch click's UUID as decoded (msgspec writes it out as canonical text), or a single
    # click's canonical lowercase UUID text: no str() per click.
    event_id: uuid.UUID | str
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


@dataclass(frozen=True, slots=True)
class ClickRecord:
    """One decoded Kafka record: what the ledger deduplicates (`record_id`) and its rows."""

    record_id: uuid.UUID | str  # a batch's UUID, or a single click's canonical UUID text
    rows: list[ClickRow]
    newest: int  # Unix seconds of the newest click: the ledger keeps the id while this is in the horizon


@lru_cache(maxsize=65_536)
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


def _check_time(occurred: datetime, *, now: datetime, horizon: timedelta, max_skew: timedelta) -> None:
    if occurred < now - horizon:
        raise PoisonMessage(f"clicks: occurred_at {occurred.isoformat()} is older than the dedup horizon ({horizon})")
    if occurred > now + max_skew:
        raise PoisonMessage(f"clicks: occurred_at {occurred.isoformat()} is in the future")


def to_row(event: clicks.LinkClicked, *, now: datetime, horizon: timedelta, max_skew: timedelta) -> ClickRow:
    """A single click of the previous format: validate what its schema did not express."""
    try:
        event_id = str(uuid.UUID(event.event_id))
    except ValueError as exc:
        raise PoisonMessage(f"clicks: event_id is not a UUID: {event.event_id[:80]!r}") from exc
    if not CODE_RE.fullmatch(event.code):
        raise PoisonMessage(f"clicks: code is not 1-64 chars of A-Z a-z 0-9 _ -: {event.code[:80]!r}")
    if not event.visitor_key or len(event.visitor_key) > MAX_VISITOR_KEY:
        raise PoisonMessage("clicks: visitor_key must be 1-128 characters")
    occurred = _utc(event.occurred_at)
    _check_time(occurred, now=now, horizon=horizon, max_skew=max_skew)
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


def batch_rows(batch: clicks.ClicksBatched, *, now: datetime, horizon: timedelta, max_skew: timedelta) -> ClickRecord:
    """A batch record: its schema checked every click at decode; here only the times are judged.

    The record is poison when its newest click is older than the horizon (its id may have left
    the ledger) or any click lies too far in the future (a producer clock bug)."""
    rows: list[ClickRow] = []
    append = rows.append
    oldest_s = int((now - horizon).timestamp())
    latest_s = int((now + max_skew).timestamp())
    newest = 0
    for c in batch.clicks:
        at = c.occurred_at
        seconds = int((at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp())
        if seconds > latest_s:
            _check_time(_utc(at), now=now, horizon=horizon, max_skew=max_skew)
        if seconds > newest:
            newest = seconds
        referrer = c.referrer
        append(
            ClickRow(
                event_id=c.event_id,
                code=c.code,
                occurred_at=seconds,
                visitor_key=c.visitor_key,
                referrer=referrer[:MAX_REFERRER] if referrer else "",
                referrer_host=referrer_host(referrer),
                country=c.country,
                device=c.device,
                is_bot=1 if c.is_bot else 0,
            )
        )
    if newest < oldest_s:
        _check_time(datetime.fromtimestamp(newest, UTC), now=now, horizon=horizon, max_skew=max_skew)
    return ClickRecord(record_id=batch.batch_id, rows=rows, newest=newest)


def decode_record(value: bytes | None, *, now: datetime, horizon: timedelta, max_skew: timedelta) -> ClickRecord:
    """Bytes from the topic -> a record of rows. Raises PoisonMessage with the reason."""
    if value is None:
        raise PoisonMessage("clicks: empty record (tombstone)")
    try:
        record = clicks.decode(value)
    except InvalidEvent as exc:
        raise PoisonMessage(exc.reason) from exc
    if isinstance(record, clicks.ClicksBatched):
        return batch_rows(record, now=now, horizon=horizon, max_skew=max_skew)
    row = to_row(record, now=now, horizon=horizon, max_skew=max_skew)
    return ClickRecord(record_id=row.event_id, rows=[row], newest=row.occurred_at)
