"""API keys: bearer scheme, every configured key accepted, the rest refused with 401."""

import pytest
from platformkit.errors import ApiError
from shorten.entrypoints.auth import ApiKeys

pytestmark = pytest.mark.unit


def refusal(keys: ApiKeys, header: str | None) -> str:
    with pytest.raises(ApiError) as info:
        keys.identify(header)
    assert info.value.status == 401
    assert info.value.headers == {"WWW-Authenticate": "Bearer"}
    return info.value.code


def test_every_configured_key_is_accepted_with_a_distinct_identity() -> None:
    keys = ApiKeys(("alpha-key", "beta-key"))
    a, b = keys.identify("Bearer alpha-key"), keys.identify("bearer beta-key")
    assert a != b and len(a) == 16
    assert "alpha" not in a  # the identity is a digest, safe to log and use in Redis keys


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "api_key_missing"),
        ("", "api_key_missing"),
        ("Bearer wrong", "api_key_invalid"),
        ("Bearer alpha-ke", "api_key_invalid"),
        ("Bearer alpha-key2", "api_key_invalid"),
        ("Basic alpha-key", "api_key_invalid"),
        ("alpha-key", "api_key_invalid"),
        ("Bearer ", "api_key_invalid"),
    ],
)
def test_refused(header: str | None, code: str) -> None:
    assert refusal(ApiKeys(("alpha-key",)), header) == code


def test_no_configured_keys_refuses_everything() -> None:
    assert refusal(ApiKeys(()), "Bearer anything") == "api_key_invalid"
