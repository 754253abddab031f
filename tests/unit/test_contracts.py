"""Every example payload of every topic contract round-trips; bad payloads are refused."""

import pytest
from contracts import InvalidEvent, clicks, deadletter, links

pytestmark = pytest.mark.unit

CONTRACTS = [links, clicks, deadletter]


@pytest.mark.parametrize("module", CONTRACTS, ids=lambda m: m.__name__)
def test_every_example_round_trips(module: object) -> None:
    for example in module.EXAMPLES:  # type: ignore[attr-defined]
        event = module.decode(example)  # type: ignore[attr-defined]
        assert module.decode(module.encode(event)) == event  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        b'{"type":"LinkClicked","schema_version":2,"event_id":"x","occurred_at":"2026-11-27T10:00:00Z","code":"c","visitor_key":"v"}',
        b'{"type":"LinkClicked","schema_version":1,"occurred_at":"2026-11-27T10:00:00Z","code":"c","visitor_key":"v"}',
        b'{"type":"Other","schema_version":1}',
    ],
)
def test_clicks_decode_refuses_poison(payload: bytes) -> None:
    with pytest.raises(InvalidEvent):
        clicks.decode(payload)


def test_links_decode_refuses_unknown_redirect_type() -> None:
    bad = links.EXAMPLES[0].replace(b'"redirect_type":302', b'"redirect_type":307')
    with pytest.raises(InvalidEvent):
        links.decode(bad)
