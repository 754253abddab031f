"""Request bodies -> commands: shape, unknown fields, defaults, PATCH semantics."""

from datetime import UTC, datetime

import pytest
from shorten.domain.commands import parse_changes, parse_create
from shorten.domain.errors import InvalidInput
from shorten.domain.model import UNSET, CreateLink, LinkChanges

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def error_of(fn: object, payload: object) -> tuple[str, str | None]:
    with pytest.raises(InvalidInput) as info:
        fn(payload, now=NOW)  # type: ignore[operator]
    return info.value.code, info.value.field


def test_create_with_only_url_takes_defaults() -> None:
    assert parse_create({"url": "https://example.com"}, now=NOW) == CreateLink(url="https://example.com")


def test_create_with_every_field() -> None:
    cmd = parse_create(
        {
            "url": "https://example.com/x",
            "alias": "my-alias",
            "expires_at": "2027-01-01T00:00:00Z",
            "redirect_type": 301,
            "max_clicks": 5,
        },
        now=NOW,
    )
    assert cmd == CreateLink(
        url="https://example.com/x",
        alias="my-alias",
        expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        redirect_type=301,
        max_clicks=5,
    )


def test_create_null_optionals_mean_absent() -> None:
    cmd = parse_create({"url": "https://e.com", "alias": None, "expires_at": None, "max_clicks": None}, now=NOW)
    assert cmd == CreateLink(url="https://e.com")


@pytest.mark.parametrize("payload", [[], ["url"], "https://e.com", 1, 1.5, None, True])
def test_body_must_be_an_object(payload: object) -> None:
    assert error_of(parse_create, payload) == ("body_not_object", None)
    assert error_of(parse_changes, payload) == ("body_not_object", None)


def test_unknown_field_is_named() -> None:
    assert error_of(parse_create, {"url": "https://e.com", "colour": "red"}) == ("unknown_field", "colour")


def test_alias_cannot_be_patched() -> None:
    assert error_of(parse_changes, {"alias": "new-one"}) == ("unknown_field", "alias")


def test_url_is_required_on_create() -> None:
    assert error_of(parse_create, {}) == ("url_required", "url")
    assert error_of(parse_create, {"alias": "abcd"}) == ("url_required", "url")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"url": "ftp://e.com"}, ("url_scheme_not_allowed", "url")),
        ({"url": "https://e.com", "alias": "x"}, ("alias_invalid", "alias")),
        ({"url": "https://e.com", "alias": "healthz"}, ("alias_reserved", "alias")),
        ({"url": "https://e.com", "expires_at": "2020-01-01T00:00:00Z"}, ("expires_at_in_past", "expires_at")),
        ({"url": "https://e.com", "expires_at": "2030-01-01T00:00:00"}, ("expires_at_invalid", "expires_at")),
        ({"url": "https://e.com", "redirect_type": 307}, ("redirect_type_invalid", "redirect_type")),
        ({"url": "https://e.com", "redirect_type": None}, ("redirect_type_invalid", "redirect_type")),
        ({"url": "https://e.com", "max_clicks": 0}, ("max_clicks_invalid", "max_clicks")),
        ({"url": 5}, ("url_invalid", "url")),
    ],
)
def test_create_reports_the_broken_rule(payload: object, expected: tuple[str, str]) -> None:
    assert error_of(parse_create, payload) == expected


def test_patch_needs_at_least_one_field() -> None:
    assert error_of(parse_changes, {}) == ("no_changes", None)


def test_patch_leaves_unmentioned_fields_unset() -> None:
    assert parse_changes({"url": "https://new.example"}, now=NOW) == LinkChanges(url="https://new.example")
    changes = parse_changes({"redirect_type": 301}, now=NOW)
    assert changes.expires_at is UNSET and changes.max_clicks is UNSET and changes.url is None


def test_patch_null_clears_expiry_and_click_limit() -> None:
    changes = parse_changes({"expires_at": None, "max_clicks": None}, now=NOW)
    assert changes == LinkChanges(expires_at=None, max_clicks=None)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"url": None}, ("url_invalid", "url")),
        ({"url": "https://u:p@e.com"}, ("url_has_credentials", "url")),
        ({"redirect_type": "301"}, ("redirect_type_invalid", "redirect_type")),
        ({"max_clicks": -3}, ("max_clicks_invalid", "max_clicks")),
        ({"expires_at": "2026-11-27T09:59:59Z"}, ("expires_at_in_past", "expires_at")),
    ],
)
def test_patch_reports_the_broken_rule(payload: object, expected: tuple[str, str]) -> None:
    assert error_of(parse_changes, payload) == expected


def test_unknown_field_name_is_echoed_bounded() -> None:
    code, field = error_of(parse_create, {"url": "https://e.com", "x" * 5000: 1})
    assert code == "unknown_field" and field == "x" * 64
