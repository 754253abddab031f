"""The pure parts of `just bench capacity` (infra/bench/capacity_*.py): what it counts as served
and counted, how it reads the lag and the rate limit, the targets it sends, and that a run only
replaces its own section of the doc."""

import json
from pathlib import Path

import pytest

from tests.support.bench import bench_on_path

with bench_on_path():
    from capacity_load import Plan, write_targets
    from capacity_report import write_doc
    from capacity_stack import differences, parse_lag, tier_of, writes_per_second_allowed

pytestmark = pytest.mark.unit


def test_a_lost_click_and_a_doubled_click_are_both_reported() -> None:
    before = {"a": 10, "b": 5}
    after = {"a": 13, "b": 7, "c": 1}
    served = {"a": 3, "b": 3}
    counted, short, extra = differences(before, after, served)
    assert counted == 3 + 2 + 1
    assert (short, extra) == (1, 1)  # b lost one; c counted a click nobody was served


def test_exact_counts_have_no_difference() -> None:
    assert differences({}, {"a": 2, "b": 1}, {"a": 2, "b": 1}) == (3, 0, 0)


def test_lag_is_summed_over_every_partition_line_only() -> None:
    text = (
        "# HELP aggregator_consumer_lag Records behind\n"
        "# TYPE aggregator_consumer_lag gauge\n"
        'aggregator_consumer_lag{group="g",topic="clicks",partition="0"} 3.0\n'
        'aggregator_consumer_lag{group="g",topic="clicks",partition="2"} 4.0\n'
        "aggregator_events_processed_total 99.0\n"
    )
    assert parse_lag(text) == (7.0, 2)
    assert parse_lag("aggregator_events_processed_total 1.0\n") == (0.0, 0)


def test_programs_map_to_tiers_whatever_their_count() -> None:
    assert tier_of("redirect-7") == "redirect"
    assert tier_of("aggregator-1") == "aggregator"
    assert tier_of("shorten-relay") == "shorten"
    assert tier_of("redis-replica") == "redis"
    assert tier_of("postgres") == "postgresql"
    assert tier_of("prometheus") == "other services"
    assert tier_of("something-new") is None


def test_rate_limit_in_creates_per_second() -> None:
    assert writes_per_second_allowed("6000/minute") == 100
    assert writes_per_second_allowed("50/second") == 50


def test_mix_targets_create_a_new_url_every_fifth_request(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    plan = Plan(rate=50, seconds=2, write_every=5)
    total = write_targets(path, plan, "http://127.0.0.1:1", ["x1", "x2", "x3"], "key", "run")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == total >= 100
    posts = [t for t in lines if t["method"] == "POST"]
    assert len(posts) == len(lines) // 5
    assert len({t["body"] for t in posts}) == len(posts)
    assert all(t["header"]["Authorization"] == ["Bearer key"] for t in posts)
    assert {t["url"] for t in lines if t["method"] == "GET"} == {f"http://127.0.0.1:1/x{i}" for i in (1, 2, 3)}


def test_reads_only_targets_list_each_code_once(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    assert write_targets(path, Plan(rate=10_000, seconds=60), "http://h", ["a", "b"], "k", "r") == 2


def test_a_run_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "capacity.md"
    doc.write_text("# Head\n\nhand-written\n")
    write_doc(doc, "before", "## before\nold\n")
    write_doc(doc, "after", "## after\nfirst\n")
    write_doc(doc, "after", "## after\nsecond\n")
    text = doc.read_text()
    assert text.startswith("# Head\n\nhand-written\n")
    assert "## before\nold\n" in text
    assert "second" in text and "first" not in text
    assert text.index("## before") < text.index("## after")


def test_zipf_targets_favour_the_first_codes(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    codes = [f"c{i}" for i in range(100)]
    total = write_targets(path, Plan(rate=1000, seconds=5, zipf=1.2), "http://h", codes, "k", "r")
    urls = [json.loads(line)["url"] for line in path.read_text().splitlines()]
    assert len(urls) == total
    # With the codes shuffled once per run, the most frequent URL gets several times the median's share.
    counts = sorted((urls.count(u) for u in set(urls)), reverse=True)
    assert counts[0] > 5 * counts[len(counts) // 2]


def test_targets_with_the_api_key_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_targets(path, Plan(rate=10, seconds=1, write_every=5), "http://h", ["a"], "secret", "r")
    assert path.stat().st_mode & 0o077 == 0
