"""Decoding a `clicks` record into a sink row: every poison kind is named, valid events normalised."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from aggregator.domain.click_records import PoisonMessage, decode_record, normalise_country, referrer_host
from contracts import clicks

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
HORIZON = timedelta(days=8)
SKEW = timedelta(hours=1)


def decode(payload: bytes | None):  # type: ignore[no-untyped-def]
    return decode_record(payload, now=NOW, horizon=HORIZON, max_skew=SKEW)


def payload(**changes: object) -> bytes:
    base = msgspec.json.decode(clicks.EXAMPLES[1])  # a single click (the previous format)
    base.update(changes)
    return msgspec.json.encode(base)


def reason(value: bytes | None) -> str:
    with pytest.raises(PoisonMessage) as info:
        decode(value)
    return info.value.reason


def test_contract_examples_become_rows() -> None:
    batch, single_human, single_bot = (decode(p) for p in clicks.EXAMPLES)
    (human,) = single_human.rows
    (bot,) = single_bot.rows
    assert single_human.record_id == human.event_id == "01890a5d-ac96-774b-bcce-b302099a8100"
    assert human.code == "aZ3kP9q"
    assert human.occurred() == datetime(2026, 11, 27, 10, 0, 1, tzinfo=UTC)  # seconds resolution
    assert (human.referrer_host, human.country, human.device, human.is_bot) == ("news.example", "DE", "mobile", 0)
    assert (bot.referrer_host, bot.country, bot.is_bot) == ("", "ZZ", 1)
    assert str(batch.record_id) == "01890a5d-ac96-774b-bcce-b302099a8200"
    assert [str(r.event_id) for r in batch.rows] == [
        "01890a5d-ac96-774b-bcce-b302099a8102",
        "01890a5d-ac96-774b-bcce-b302099a8103",
    ]
    assert [(r.code, r.referrer_host, r.country, r.is_bot) for r in batch.rows] == [
        ("aZ3kP9q", "news.example", "FR", 0),
        ("Qx7_b-2", "", "ZZ", 1),
    ]
    assert batch.newest == int(datetime(2026, 11, 27, 10, 0, 3, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "tombstone"),
        (b"not json", "malformed"),
        (b"{}", "missing required field"),
        (payload(schema_version=2), "schema_version"),
        (payload(type="LinkCreated"), "LinkCreated"),
        (payload(event_id=None), "event_id"),
        (payload(occurred_at="yesterday"), "occurred_at"),
        (payload(device="toaster"), "device"),
        (payload(event_id="not-a-uuid"), "not a UUID"),
        (payload(code="bad code!"), "code is not"),
        (payload(code="x" * 65), "code is not"),
        (payload(visitor_key=""), "visitor_key"),
        (payload(occurred_at="2026-11-18T10:00:00Z"), "older than the dedup horizon"),
        (payload(occurred_at="2026-11-27T12:00:00Z"), "in the future"),
    ],
)
def test_poison_is_named(value: bytes | None, fragment: str) -> None:
    assert fragment in reason(value)


def test_naive_time_is_utc_and_uuid_is_canonical() -> None:
    record = decode(payload(occurred_at="2026-11-27T09:59:00", event_id="01890A5D-AC96-774B-BCCE-B302099A8100"))
    (row,) = record.rows
    assert row.occurred() == datetime(2026, 11, 27, 9, 59, tzinfo=UTC)
    assert row.event_id == record.record_id == "01890a5d-ac96-774b-bcce-b302099a8100"


def test_offset_time_is_converted_to_utc() -> None:
    assert decode(payload(occurred_at="2026-11-27T11:00:00+02:00")).rows[0].occurred() == datetime(
        2026, 11, 27, 9, 0, tzinfo=UTC
    )


def batch_payload(*times: str) -> bytes:
    base = msgspec.json.decode(clicks.EXAMPLES[0])
    click = base["clicks"][0]
    base["clicks"] = [
        {**click, "event_id": f"01890a5d-ac96-774b-bcce-b302099a81{i:02d}", "occurred_at": t}
        for i, t in enumerate(times)
    ]
    return msgspec.json.encode(base)


def test_a_batch_is_judged_on_its_newest_click_and_no_click_may_be_in_the_future() -> None:
    old, recent = "2026-11-18T10:00:00Z", "2026-11-27T10:00:00Z"
    kept = decode(batch_payload(old, recent))  # the ledger keeps its id while its newest click is in the horizon
    assert len(kept.rows) == 2 and kept.newest == int(datetime(2026, 11, 27, 10, tzinfo=UTC).timestamp())
    assert "older than the dedup horizon" in reason(batch_payload(old, old))
    assert "in the future" in reason(batch_payload(recent, "2026-11-27T12:00:00Z"))


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        (None, ""),
        ("", ""),
        ("https://WWW.Example.com/a?b", "example.com"),
        ("http://news.example:8080/", "news.example"),
        ("android-app://com.slack", "com.slack"),
        ("not a url", ""),
        ("http://[::1", ""),
    ],
)
def test_referrer_host(referrer: str | None, host: str) -> None:
    assert referrer_host(referrer) == host


@pytest.mark.parametrize(("country", "norm"), [("de", "DE"), (" fr ", "FR"), ("", "ZZ"), ("DEU", "ZZ"), ("1A", "ZZ")])
def test_country(country: str, norm: str) -> None:
    assert normalise_country(country) == norm
