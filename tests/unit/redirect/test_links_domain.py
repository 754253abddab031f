"""Projection of links events, status of a link at a time, Cache-Control per redirect type."""

from datetime import UTC, datetime

import pytest
from contracts.links import LinkCreated, LinkDeleted, LinkUpdated
from redirect.domain.links import (
    NOT_FOUND,
    InvalidLinkEvent,
    Link,
    cache_control,
    is_valid_code,
    link_from_event,
    with_headers,
)

pytestmark = pytest.mark.unit

T = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
EXP = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def created(**kw: object) -> LinkCreated:
    fields: dict[str, object] = {"event_id": "e1", "occurred_at": T, "code": "abc1234", "url": "https://e.com/x"}
    return LinkCreated(**(fields | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["abc1234", "A-b_9", "x", "z" * 64])
def test_valid_codes(code: str) -> None:
    assert is_valid_code(code)


@pytest.mark.parametrize("code", ["", "z" * 65, "a b", "a.b", "a%2F", "ümlaut", "a:b", "../x", "a\x00b"])
def test_codes_that_cannot_exist(code: str) -> None:
    assert not is_valid_code(code)


def test_created_and_updated_carry_the_full_state_at_their_offset() -> None:
    link = link_from_event(created(redirect_type=301, expires_at=EXP, max_clicks=5), 17)
    assert link == Link(offset=17, url="https://e.com/x", redirect_type=301, expires_at=EXP.timestamp(), max_clicks=5)
    upd = LinkUpdated(event_id="e2", occurred_at=T, code="abc1234", url="https://e.org/y")
    assert link_from_event(upd, 18) == Link(offset=18, url="https://e.org/y")


def test_deleted_is_a_tombstone_version() -> None:
    link = link_from_event(LinkDeleted(event_id="e3", occurred_at=T, code="abc1234"), 19)
    assert (link.offset, link.deleted, link.status_at(0)) == (19, True, 410)
    assert link.gone_reason(0) == "link_deleted"


def test_a_naive_expiry_is_read_as_utc() -> None:
    link = link_from_event(created(expires_at=EXP.replace(tzinfo=None)), 1)
    assert link.expires_at == EXP.timestamp()


@pytest.mark.parametrize(
    "event",
    [
        created(code="bad code"),
        created(url="https://e.com/\r\nSet-Cookie: x=1"),
        created(url="https://e.com/ü"),
        created(url="https://e.com/" + "a" * 9000),
        created(url=""),
        created(max_clicks=0),
    ],
)
def test_content_that_cannot_be_served_is_poison(event: LinkCreated) -> None:
    with pytest.raises(InvalidLinkEvent):
        link_from_event(event, 1)


def test_status_at_a_time() -> None:
    link = Link(offset=1, url="https://e.com/", expires_at=100.0)
    assert link.status_at(99.9) == 302
    assert link.status_at(100.0) == 410 and link.gone_reason(100.0) == "link_expired"
    assert NOT_FOUND.status_at(0) == 404
    assert Link(offset=1, url="https://e.com/", max_clicks=1).gone_reason(0) == "link_click_limit_reached"


def test_cache_control_fits_the_redirect_type() -> None:
    assert cache_control(Link(offset=1, redirect_type=302), 0, permanent_max_age=3600) == b"private, no-cache"
    assert cache_control(Link(offset=1, redirect_type=301), 0, permanent_max_age=3600) == b"public, max-age=3600"
    # A 301 with a click limit must reach us on every click.
    limited = Link(offset=1, redirect_type=301, max_clicks=3)
    assert cache_control(limited, 0, permanent_max_age=3600) == b"private, no-cache"
    # A 301 is never cached past its expiry.
    expiring = Link(offset=1, redirect_type=301, expires_at=1000.0)
    assert cache_control(expiring, 900.5, permanent_max_age=3600) == b"public, max-age=99"
    assert cache_control(expiring, 2000, permanent_max_age=3600) == b"public, max-age=0"


def test_headers_are_precomputed_unless_they_depend_on_time() -> None:
    plain = with_headers(Link(offset=1, url="https://e.com/a"), permanent_max_age=60)
    assert plain.headers == (
        (b"location", b"https://e.com/a"),
        (b"cache-control", b"private, no-cache"),
        (b"content-length", b"0"),
    )
    assert (
        with_headers(
            Link(offset=1, url="https://e.com/a", redirect_type=301, expires_at=5.0), permanent_max_age=60
        ).headers
        is None
    )
    assert with_headers(NOT_FOUND, permanent_max_age=60).headers is None
