"""Who may read what (analytics.domain.access): the decision alone, every case of the table."""

import pytest
from analytics.domain.access import LinkOwner, check_stats_access, check_top_access
from analytics.entrypoints.app import STATUS
from platformkit.apikeys import Principal
from platformkit.errors import ApiError
from platformkit.failures import DomainError

pytestmark = pytest.mark.unit

PRIVATE = LinkOwner(workspace="acme", public_stats=False)
PUBLIC = LinkOwner(workspace="acme", public_stats=True)


def key(workspace: str, *scopes: str) -> Principal:
    return Principal("k_test", workspace, frozenset(scopes))  # type: ignore[arg-type]


def refusal(owner: LinkOwner | None, caller: Principal | None) -> tuple[int, str, str, str | None] | None:
    try:
        check_stats_access("abc123", owner, caller)
    except ApiError as exc:  # the caller's key (403) is the web layer's
        return exc.status, exc.code, exc.message, exc.field
    except DomainError as exc:  # the link's answer: its status from the service's one table
        return STATUS[type(exc)], exc.code, exc.message, exc.field
    return None


@pytest.mark.parametrize(
    ("owner", "caller"),
    [
        (PRIVATE, key("acme", "stats:read")),
        (PRIVATE, key("acme", "admin")),
        (PUBLIC, None),  # the "+" page: anyone, no key
        (PUBLIC, key("other", "links:write")),  # public is public, whoever asks
        (PUBLIC, key("acme", "links:read")),
    ],
)
def test_allowed(owner: LinkOwner, caller: Principal | None) -> None:
    assert refusal(owner, caller) is None


def test_everyone_who_may_not_see_a_link_gets_the_unknown_codes_answer() -> None:
    unknown = refusal(None, None)
    assert unknown is not None and unknown[:2] == (404, "link_not_found")
    for owner, caller in [
        (None, key("acme", "admin")),
        (PRIVATE, None),
        (PRIVATE, key("other", "stats:read")),
        (PRIVATE, key("other", "admin")),
    ]:
        assert refusal(owner, caller) == unknown  # status, code, message, field: nothing tells them apart


def test_the_owners_key_without_the_scope_is_403() -> None:
    assert refusal(PRIVATE, key("acme", "links:write"))[:2] == (403, "scope_missing")  # type: ignore[index]


def test_top_ranks_the_callers_workspace_and_needs_stats_read() -> None:
    assert check_top_access(key("acme", "stats:read")) == "acme"
    assert check_top_access(key("acme", "admin")) == "acme"
    with pytest.raises(ApiError) as refused:
        check_top_access(key("acme", "links:write"))
    assert (refused.value.status, refused.value.code) == (403, "scope_missing")
