"""Field rules: each broken rule has its own stable error code."""

from datetime import UTC, datetime, timedelta

import pytest
from shorten.domain.errors import InvalidInput
from shorten.domain.validation import (
    MAX_CLICKS_LIMIT,
    MAX_URL_LENGTH,
    validate_alias,
    validate_expires_at,
    validate_max_clicks,
    validate_redirect_type,
    validate_url,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def code_of(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(InvalidInput) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("http://example.com/a/b?x=1&y=2#frag", "http://example.com/a/b?x=1&y=2#frag"),
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://münchen.de/straße?q=ä", "https://xn--mnchen-3ya.de/stra%C3%9Fe?q=%C3%A4"),
        ("https://例え.テスト/", "https://xn--r8jz45g.xn--zckzah/"),
        ("https://example.com./", "https://example.com/"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("http://[2001:DB8::1]/x", "http://[2001:db8::1]/x"),
        ("https://example.com/%7Euser", "https://example.com/%7Euser"),
    ],
)
def test_valid_urls_are_normalised(url: str, expected: str) -> None:
    assert validate_url(url) == expected


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/file", "url_scheme_not_allowed"),
        ("javascript:alert(1)", "url_scheme_not_allowed"),
        ("data:text/html,<b>x</b>", "url_scheme_not_allowed"),
        ("example.com/path", "url_scheme_not_allowed"),
        ("//example.com/path", "url_scheme_not_allowed"),
        ("http:///path-only", "url_missing_host"),
        ("https://", "url_missing_host"),
        ("http://:80/", "url_missing_host"),
        ("https://user:secret@example.com/", "url_has_credentials"),
        ("https://user@example.com/", "url_has_credentials"),
        ("https://:pw@example.com/", "url_has_credentials"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, "url_too_long"),
        ("", "url_invalid"),
        ("https://exa mple.com/", "url_invalid"),
        ("https://example.com/\n", "url_invalid"),
        ("https://example.com:99999/", "url_invalid"),
        ("https://example.com:port/", "url_invalid"),
        ("http://[::1/", "url_invalid"),
        ("https://a..b/", "url_host_invalid"),
        ("https://<script>/", "url_host_invalid"),
        ("https://" + "a" * 64 + ".com/", "url_host_invalid"),
        ("https://exa%mple.com/", "url_host_invalid"),
    ],
)
def test_invalid_urls_have_their_own_code(url: str, code: str) -> None:
    assert code_of(validate_url, url) == code


@pytest.mark.parametrize("value", [None, 42, ["https://example.com"], {"u": 1}, True])
def test_url_must_be_a_string(value: object) -> None:
    assert code_of(validate_url, value) == "url_invalid"


def test_url_length_limit_is_inclusive() -> None:
    base = "https://example.com/"
    url = base + "a" * (MAX_URL_LENGTH - len(base))
    assert len(url) == MAX_URL_LENGTH
    assert validate_url(url) == url
    assert code_of(validate_url, url + "a") == "url_too_long"


def test_url_that_grows_past_the_limit_when_normalised_is_too_long() -> None:
    base = "https://example.com/"
    url = base + "ü" * (MAX_URL_LENGTH - len(base))  # each ü becomes %C3%BC
    assert len(url) == MAX_URL_LENGTH
    assert code_of(validate_url, url) == "url_too_long"


def test_error_names_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_url("ftp://x.example")
    assert info.value.field == "url"


@pytest.mark.parametrize("alias", ["abc", "my-link_2", "A" * 64, "x_Y-z", "api2", "metricsz"])
def test_valid_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    "alias", ["ab", "a" * 65, "has space", "dot.ted", "slash/ed", "ümlaut", "percent%20", "", 123, None, ["abc"]]
)
def test_invalid_aliases(alias: object) -> None:
    assert code_of(validate_alias, alias) == "alias_invalid"


@pytest.mark.parametrize(
    "alias", ["api", "API", "healthz", "readyz", "metrics", "static", "openapi.json", "favicon.ico", "robots.txt"]
)
def test_reserved_aliases(alias: str) -> None:
    assert code_of(validate_alias, alias) == "alias_reserved"


def test_expires_at_accepts_future_aware_times_and_converts_to_utc() -> None:
    assert validate_expires_at("2027-01-01T02:00:00+02:00", now=NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    assert validate_expires_at("2027-01-01T00:00:00Z", now=NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    assert validate_expires_at(None, now=NOW) is None


@pytest.mark.parametrize(
    "value", ["2027-01-01T00:00:00", "2027-01-01", "tomorrow", "", "2027-13-01T00:00:00Z", 1767225600, True, ["x"]]
)
def test_expires_at_invalid(value: object) -> None:
    assert code_of(validate_expires_at, value, now=NOW) == "expires_at_invalid"


def test_expires_at_overflowing_utc_is_invalid_not_a_crash() -> None:
    assert code_of(validate_expires_at, "9999-12-31T23:59:59-12:00", now=NOW) == "expires_at_invalid"


@pytest.mark.parametrize("delta", [timedelta(0), timedelta(seconds=-1), timedelta(days=-400)])
def test_expires_at_not_in_the_future(delta: timedelta) -> None:
    assert code_of(validate_expires_at, (NOW + delta).isoformat(), now=NOW) == "expires_at_in_past"


def test_expires_at_one_second_ahead_is_accepted() -> None:
    assert validate_expires_at((NOW + timedelta(seconds=1)).isoformat(), now=NOW) == NOW + timedelta(seconds=1)


@pytest.mark.parametrize("value", [301, 302])
def test_redirect_types(value: int) -> None:
    assert validate_redirect_type(value) == value


@pytest.mark.parametrize("value", [300, 307, 308, "302", 302.0, None, True])
def test_invalid_redirect_types(value: object) -> None:
    assert code_of(validate_redirect_type, value) == "redirect_type_invalid"


@pytest.mark.parametrize("value", [1, 100, MAX_CLICKS_LIMIT, None])
def test_max_clicks(value: int | None) -> None:
    assert validate_max_clicks(value) == value


@pytest.mark.parametrize("value", [0, -1, 1.5, 10.0, "10", True, False, MAX_CLICKS_LIMIT + 1, 10**30, [1]])
def test_invalid_max_clicks(value: object) -> None:
    assert code_of(validate_max_clicks, value) == "max_clicks_invalid"
