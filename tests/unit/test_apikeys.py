"""The key book: digests only, newest event per key wins, revoked and expired keys refused;
scopes within the key's workspace, `admin` implying the others."""

from datetime import UTC, datetime, timedelta

import pytest
from contracts.keys import KeyIssued, KeyRevoked
from platformkit.apikeys import KeyBook, Principal, bearer_secret, digest, new_secret, parse_scopes
from platformkit.errors import ApiError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def issued(
    key_id: str,
    secret: str,
    *,
    workspace: str = "acme",
    scopes: tuple = ("links:write",),
    expires_at: datetime | None = None,
) -> KeyIssued:
    return KeyIssued(
        event_id=f"e-{key_id}-{secret}",
        occurred_at=NOW,
        key_id=key_id,
        workspace=workspace,
        scopes=scopes,
        digest=digest(secret),
        expires_at=expires_at,
    )


def test_a_key_is_found_by_its_secret_only() -> None:
    book = KeyBook(clock=lambda: NOW)
    secret = new_secret()
    book.apply(issued("k_one", secret, scopes=("links:write", "stats:read")))
    assert book.find(secret) == Principal("k_one", "acme", frozenset({"links:write", "stats:read"}))
    assert book.find(secret + "x") is None
    assert book.find(digest(secret)) is None  # the stored digest is not a credential


def test_revocation_and_reissue_replace_the_old_state() -> None:
    book = KeyBook(clock=lambda: NOW)
    book.apply(issued("k_one", "old-secret"))
    book.apply(issued("k_one", "new-secret"))  # same id, new digest: the old secret stops working
    assert book.find("old-secret") is None
    assert book.find("new-secret") is not None
    book.apply(KeyRevoked(event_id="r", occurred_at=NOW, key_id="k_one", workspace="acme"))
    assert book.find("new-secret") is None
    assert len(book) == 0


def test_an_expired_key_is_refused_from_its_expiry_on() -> None:
    now = [NOW]
    book = KeyBook(clock=lambda: now[0])
    book.apply(issued("k_one", "s", expires_at=NOW + timedelta(minutes=5)))
    assert book.find("s") is not None
    now[0] = NOW + timedelta(minutes=5)
    assert book.find("s") is None


def test_admin_implies_every_scope_and_others_only_their_own() -> None:
    admin = Principal("k", "acme", frozenset({"admin"}))
    writer = Principal("k", "acme", frozenset({"links:write"}))
    assert all(admin.allows(s) for s in ("links:read", "links:write", "stats:read", "admin"))
    assert writer.allows("links:write")
    assert writer.allows("links:read")
    assert not Principal("k", "acme", frozenset({"links:read"})).allows("links:write")
    assert not writer.allows("stats:read")
    with pytest.raises(ApiError) as refused:
        writer.require("stats:read")
    assert (refused.value.status, refused.value.code) == (403, "scope_missing")


def test_scopes_parse_and_unknown_ones_are_named() -> None:
    assert parse_scopes("links:write, stats:read,links:write") == ("links:write", "stats:read")
    with pytest.raises(ValueError, match="'links:delete'"):
        parse_scopes("links:delete")
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(" , ")


@pytest.mark.parametrize("header", ["Basic abc", "Bearer ", "Bearer"])
def test_a_malformed_authorization_is_401(header: str) -> None:
    with pytest.raises(ApiError) as refused:
        bearer_secret(header)
    assert (refused.value.status, refused.value.code) == (401, "api_key_invalid")


def test_no_authorization_is_not_an_error_here() -> None:
    assert bearer_secret(None) is None
    assert bearer_secret("bearer  abc ") == "abc"
