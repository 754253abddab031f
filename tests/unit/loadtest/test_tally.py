"""Per-code redirect tallies: outcomes, files written by each process, merging."""

import json
from pathlib import Path

import pytest

from loadtest.tally import RedirectTally, read_run_tallies, write_tally

pytestmark = pytest.mark.unit


def test_outcomes_split_served_refused_and_unknown() -> None:
    tally = RedirectTally()
    for _ in range(4):
        tally.started("a")
    tally.served("a")
    tally.served("a")
    tally.refused("a")
    outcome = tally.outcomes()["a"]
    assert (outcome.ok, outcome.no_click, outcome.attempts, outcome.indeterminate) == (2, 1, 4, 1)


def test_files_of_every_process_are_merged(tmp_path: Path) -> None:
    first, second = RedirectTally(), RedirectTally()
    for tally, code in ((first, "a"), (second, "a"), (second, "b")):
        tally.started(code)
        tally.served(code)
    write_tally(tmp_path, first, name="101")
    write_tally(tmp_path, second, name="102")
    (tmp_path / "unrelated.json").write_text("{}")
    merged = read_run_tallies(tmp_path)
    assert merged.outcomes()["a"].ok == 2 and merged.outcomes()["b"].ok == 1
    assert sorted(p.name for p in tmp_path.glob("*.tmp")) == []


def test_rewriting_a_process_file_replaces_it(tmp_path: Path) -> None:
    tally = RedirectTally()
    tally.started("a")
    write_tally(tmp_path, tally, name="7")
    tally.served("a")
    write_tally(tmp_path, tally, name="7")
    assert read_run_tallies(tmp_path).outcomes()["a"].ok == 1


@pytest.mark.parametrize("payload", ["[]", '{"ok": {"a": -1}}', '{"attempts": {"a": "3"}}', '{"ok": []}'])
def test_malformed_files_are_refused(tmp_path: Path, payload: str) -> None:
    (tmp_path / "tally-1.json").write_text(payload)
    with pytest.raises(ValueError):
        read_run_tallies(tmp_path)


def test_round_trip() -> None:
    tally = RedirectTally()
    tally.started("x")
    tally.refused("x")
    assert RedirectTally.from_json(json.loads(json.dumps(tally.to_json()))) == tally
