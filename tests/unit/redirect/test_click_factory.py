"""Clicks built off the request path from the captured headers."""

import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from contracts.clicks import Click
from redirect.domain.click_factory import ClickFactory, RawClick
from redirect.domain.ids import new_event_id
from redirect.domain.useragent import make_classifier
from redirect.domain.visitor import TrustedProxies, VisitorKeys, parse_networks

pytestmark = pytest.mark.unit

TS = datetime(2026, 11, 27, 10, 0, 1, 250000, tzinfo=UTC).timestamp()
UA = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def factory(country_header: str = "CF-IPCountry") -> ClickFactory:
    return ClickFactory(
        visitor_keys=VisitorKeys(b"s"),
        proxies=TrustedProxies(parse_networks("127.0.0.1")),
        classify=make_classifier(),
        country_header=country_header,
    )


def build(f: ClickFactory, raw_click: RawClick) -> Click:
    return f.build(raw_click, new_event_id())


def raw(headers: list[tuple[bytes, bytes]], peer: str | None = "127.0.0.1") -> RawClick:
    return ("abc1234", TS, headers, peer)


def test_event_fields_from_the_request() -> None:
    headers = [
        (b"user-agent", UA),
        (b"referer", b"https://news.example/"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"cf-ipcountry", b"de"),
    ]
    event = build(factory(), raw(headers))
    assert (event.code, event.occurred_at, event.referrer, event.user_agent) == (
        "abc1234",
        datetime.fromtimestamp(TS, UTC),
        "https://news.example/",
        UA.decode(),
    )
    assert (event.device, event.is_bot, event.country) == ("mobile", False, "DE")
    assert event.visitor_key == VisitorKeys(b"s").key("203.0.113.7", UA.decode(), event.occurred_at.date())
    payload = msgspec.json.encode(event)
    assert msgspec.json.decode(payload, type=Click) == event  # valid under the contract's strict checks
    assert b"203.0.113.7" not in payload  # no raw IP on the topic


def test_a_bot_is_flagged_not_dropped() -> None:
    event = build(factory(), raw([(b"user-agent", b"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)")]))
    assert (event.device, event.is_bot) == ("bot", True)


@pytest.mark.parametrize(
    ("header", "peer", "country"),
    [
        (None, "127.0.0.1", "ZZ"),  # no header
        (b"FR", "198.51.100.1", "ZZ"),  # untrusted peer: not believed
        (b"XX", "127.0.0.1", "ZZ"),  # Cloudflare's "unknown"
        (b"T1", "127.0.0.1", "ZZ"),  # Tor: not a country
        (b"FRA", "127.0.0.1", "ZZ"),
    ],
)
def test_country_only_from_a_trusted_well_formed_header(header: bytes | None, peer: str, country: str) -> None:
    headers = [(b"cf-ipcountry", header)] if header is not None else []
    assert build(factory(), raw(headers, peer)).country == country


def test_without_a_configured_header_the_country_is_unknown() -> None:
    assert build(factory(country_header=""), raw([(b"cf-ipcountry", b"DE")])).country == "ZZ"


def test_oversized_user_agent_and_referrer_are_truncated() -> None:
    event = build(factory(), raw([(b"user-agent", b"x" * 5000), (b"referer", b"https://r/" + b"y" * 5000)]))
    assert len(event.user_agent) == 512 and event.referrer is not None and len(event.referrer) == 2048


def test_each_click_gets_the_event_id_it_is_given() -> None:
    ids = [new_event_id(), new_event_id()]
    assert [build_with(ids[0]).event_id, build_with(ids[1]).event_id] == ids


def build_with(event_id: uuid.UUID) -> Click:
    return factory().build(raw([]), event_id)


def test_the_country_comes_from_the_client_address_unless_a_trusted_header_gives_one() -> None:
    from redirect.adapters.geoip import country_of

    geo = ClickFactory(
        visitor_keys=VisitorKeys(b"s"),
        proxies=TrustedProxies(parse_networks("127.0.0.1")),
        classify=make_classifier(),
        country_header="CF-IPCountry",
        country_of=country_of,
    )
    via_proxy = [(b"x-forwarded-for", b"8.8.8.8")]
    assert build(geo, raw(via_proxy)).country == "US"
    assert build(geo, raw([(b"x-forwarded-for", b"2001:67c:2e8:22::c100:68b")])).country == "NL"  # RIPE NCC
    assert build(geo, raw([*via_proxy, (b"cf-ipcountry", b"fr")])).country == "FR"  # the edge knows better
    # No country: documentation, private and loopback addresses, and a peer with no address.
    for address in (b"203.0.113.9", b"10.0.0.1", b"2001:db8::1"):
        assert build(geo, raw([(b"x-forwarded-for", address)])).country == "ZZ"
    assert build(geo, raw([])).country == "ZZ"  # the trusted proxy itself: loopback
    assert build(geo, raw([], peer=None)).country == "ZZ"
    # An untrusted peer's forwarded header is ignored: its own address decides.
    assert build(geo, raw(via_proxy, peer="1.1.1.1")).country == "AU"
    event = build(geo, raw(via_proxy))
    assert b"8.8.8.8" not in msgspec.json.encode(event)  # the address is used, never published
