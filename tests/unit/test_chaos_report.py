"""`just chaos`'s books and table (infra/chaos/report.py)."""

import pytest
from chaos.report import COLUMNS, ClickBalance, Row, balance, table
from chaos.scenarios import SCENARIOS

from loadtest.tally import CodeOutcome

pytestmark = pytest.mark.unit


def test_served_but_not_counted_is_lost_and_counted_beyond_unknown_fates_is_twice() -> None:
    outcomes = {
        "exact": CodeOutcome(ok=10, no_click=0, attempts=10),
        "short": CodeOutcome(ok=10, no_click=0, attempts=10),
        "unsure": CodeOutcome(ok=10, no_click=0, attempts=13),  # 3 requests cut off by the fault
        "over": CodeOutcome(ok=10, no_click=1, attempts=11),
        "unreported": CodeOutcome(ok=4, no_click=0, attempts=4),
    }
    counted: dict[str, int | None] = {"exact": 10, "short": 7, "unsure": 12, "over": 11, "unreported": None}
    assert balance(outcomes, counted) == ClickBalance(served=44, counted=40, lost=3 + 4, twice=1)


def test_the_table_has_the_issue_columns_and_a_line_of_notes_per_scenario() -> None:
    row = Row("kill x", 1200, 3, ClickBalance(1000, 1000, 0, 0), 2.25, True, ("x SIGKILLed",))
    text = table([row])
    lines = text.splitlines()
    assert lines[0] == "| " + " | ".join([*COLUMNS, "ok"]) + " |"
    assert lines[2] == "| kill x | 1,200 | 3 | 1,000 | 1,000 | 0 | 0 | 2.2 | yes |"
    assert lines[-1] == "- kill x: x SIGKILLed"
    assert "kill x" in table([row], markdown=False)


def test_scenario_names_are_unique_and_ci_runs_a_subset() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
    assert 0 < sum(s.ci for s in SCENARIOS) < len(SCENARIOS)
