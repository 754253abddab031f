"""What the check reads from analytics, and what the generator looks like to the redirect service."""

from typing import Any

import pytest
from redirect.domain.useragent import make_classifier

from loadtest.analytics import StoreCounts, counts_of
from loadtest.browser import BROWSER_USER_AGENTS

pytestmark = pytest.mark.unit


def _body(lifetime: Any, in_range: Any) -> dict[str, Any]:
    return {"code": "abc", "totals": {"clicks": in_range, "unique_visitors": 1}, "lifetime": {"clicks": lifetime}}


def test_both_stores_are_read_and_a_count_is_settled_only_when_they_agree() -> None:
    assert counts_of(_body(7, 7)) == StoreCounts(lifetime=7, in_range=7)
    assert counts_of(_body(7, 7)).agreed == 7
    assert counts_of(_body(7, 6)).agreed is None


@pytest.mark.parametrize(
    "body",
    [[], {"totals": {"clicks": 1}}, _body(None, 1), _body(1, -1), _body(True, 1), _body("3", 3), {"lifetime": 3}],
)
def test_bodies_without_counts_are_refused(body: Any) -> None:
    with pytest.raises(ValueError):
        counts_of(body)


def test_the_generators_user_agents_are_people_not_bots() -> None:
    """Analytics excludes bots by default: a bot UA would make every click invisible to the check."""
    classify = make_classifier()
    for user_agent in BROWSER_USER_AGENTS:
        device, is_bot = classify(user_agent)
        assert not is_bot and device in ("desktop", "mobile"), user_agent
