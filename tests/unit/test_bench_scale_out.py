"""The pure parts of `just bench scale-out` (infra/bench/scale_out*.py, issue 11 item 3): which
programs run with N hosts, how nginx's redirect upstream is narrowed to them, when the aggregator
workers count as rebalanced, and the per-tier cost and ratio tables."""

import argparse
import re
from collections import Counter
from pathlib import Path

import pytest
from stackctl import config, render
from stackctl.config import StackSettings

from tests.support.bench import bench_on_path

with bench_on_path():
    from capacity_load import AttackResult, Plan
    from capacity_report import StepReport
    from capacity_stack import metric_total, partition_lags, tier_of
    from scale_out_flush import (
        FLUSH_ENV,
        FLUSH_MODES,
        REPLICA_FLOOR_ENV,
        REPLICA_FLUSH_ENV,
        as_rendered,
        configurations,
        mode_conf,
        with_program_env,
    )
    from scale_out_hosts import balanced, host_plan, mark_redirect_servers
    from scale_out_report import (
        TIER_NAMES,
        Configuration,
        group_tiers,
        label,
        ratio_table,
        ratios,
        render_section,
        trend,
    )

pytestmark = pytest.mark.unit


@pytest.fixture
def s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    for name in ("STACK_PROFILE", "CLUSTER_HOSTS", "REDIRECT_REPLICA_PORTS", "AGGREGATOR_WEB_PORTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "NETNS_RUN_DIR", tmp_path / "netns")  # no namespaces: CLUSTER_HOSTS
    return StackSettings(
        stack_profile="cluster",
        local_dir=tmp_path / "cluster",
        cluster_hosts="127.0.0.21,127.0.0.22,127.0.0.23",
        redirect_replica_ports="8011,8012,8013",
        aggregator_web_ports="6061,6062,6063",
    )


# -- host selection ------------------------------------------------------------------------------


def test_one_host_runs_only_the_first_replica_and_worker(s: StackSettings) -> None:
    plan = host_plan(s, 1)
    assert plan.hosts == ("127.0.0.21",)
    assert plan.running == ("redirect-1", "aggregator-1")
    assert plan.stopped == ("redirect-2", "redirect-3", "aggregator-2", "aggregator-3")
    assert plan.redirect_servers == ("127.0.0.21:8011",)
    assert plan.lag_endpoints == ("127.0.0.21:6061",)


def test_each_host_count_adds_that_hosts_programs(s: StackSettings) -> None:
    two, three = host_plan(s, 2), host_plan(s, 3)
    assert two.running == ("redirect-1", "redirect-2", "aggregator-1", "aggregator-2")
    assert two.stopped == ("redirect-3", "aggregator-3")
    assert two.redirect_servers == ("127.0.0.21:8011", "127.0.0.22:8012")
    assert three.stopped == ()
    assert three.lag_endpoints == ("127.0.0.21:6061", "127.0.0.22:6062", "127.0.0.23:6063")


def test_more_replicas_than_hosts_follow_the_clusters_placement(s: StackSettings) -> None:
    """Program i runs on host (i-1) % hosts, as the cluster renders it: replica 4 is on host 1."""
    wide = s.model_copy(update={"redirect_replica_ports": "8011,8012,8013,8014"})
    assert host_plan(wide, 1).redirect_servers == ("127.0.0.21:8011", "127.0.0.21:8014")
    assert "redirect-4" in host_plan(wide, 1).running


def test_host_counts_the_cluster_does_not_have_are_refused(s: StackSettings) -> None:
    for n in (0, 4):
        with pytest.raises(ValueError, match="hosts"):
            host_plan(s, n)
    with pytest.raises(ValueError, match="cluster profile"):
        host_plan(s.model_copy(update={"stack_profile": "default"}), 1)


# -- nginx's redirect upstream -------------------------------------------------------------------


def _nginx(s: StackSettings) -> str:
    return render.render_text((render.TEMPLATES / "nginx.conf").read_text(), render.template_values(s))


def _upstream(conf: str, name: str) -> str:
    return conf.split(f"upstream {name} {{", 1)[1].split("}", 1)[0]


def test_the_stopped_hosts_replicas_are_marked_down_and_nothing_else_changes(s: StackSettings) -> None:
    conf = _nginx(s)
    narrowed = mark_redirect_servers(conf, host_plan(s, 1).redirect_servers)
    upstream = _upstream(narrowed, "redirect")
    assert "server 127.0.0.21:8011 max_fails=1 fail_timeout=2s;" in upstream
    assert "server 127.0.0.22:8012 max_fails=1 fail_timeout=2s down;" in upstream
    assert "server 127.0.0.23:8013 max_fails=1 fail_timeout=2s down;" in upstream
    assert _upstream(narrowed, "shorten") == _upstream(conf, "shorten")
    changed = [(a, b) for a, b in zip(conf.splitlines(), narrowed.splitlines(), strict=True) if a != b]
    assert len(changed) == 2 and all(b == a[:-1] + " down;" for a, b in changed)


def test_marks_are_lifted_again_and_the_rendered_file_comes_back(s: StackSettings) -> None:
    conf = _nginx(s)
    one = mark_redirect_servers(conf, host_plan(s, 1).redirect_servers)
    two = mark_redirect_servers(one, host_plan(s, 2).redirect_servers)
    assert "127.0.0.22:8012 max_fails=1 fail_timeout=2s;" in _upstream(two, "redirect")
    assert _upstream(two, "redirect").count(" down;") == 1
    assert mark_redirect_servers(two, host_plan(s, 3).redirect_servers) == conf


def test_a_live_server_missing_from_the_upstream_is_an_error(s: StackSettings) -> None:
    with pytest.raises(ValueError, match=re.escape("127.0.0.99:8011")):
        mark_redirect_servers(_nginx(s), ["127.0.0.99:8011"])
    with pytest.raises(ValueError, match="upstream redirect"):
        mark_redirect_servers("http { }", ["127.0.0.21:8011"])


# -- the aggregator's rebalance --------------------------------------------------------------------


def test_lag_is_read_per_partition() -> None:
    text = (
        'aggregator_consumer_lag{group="g",topic="clicks",partition="0"} 3.0\n'
        'aggregator_consumer_lag{group="g",topic="clicks",partition="2"} 0.0\n'
        "aggregator_events_processed_total 99.0\n"
    )
    assert partition_lags(text) == {0: 3.0, 2: 0.0}


def test_rebalanced_means_every_worker_owns_a_partition_all_are_owned_and_none_lags() -> None:
    assert balanced({"w1": {0: 0.0, 2: 0.0}, "w2": {1: 0.0}}, 3)
    assert not balanced({"w1": {0: 0.0, 1: 0.0, 2: 0.0}, "w2": {}}, 3)  # w2 has joined, not been given one
    assert not balanced({"w1": {0: 0.0}, "w2": {1: 0.0}}, 3)  # partition 2 is nobody's yet
    assert not balanced({"w1": {0: 0.0, 2: 4.0}, "w2": {1: 0.0}}, 3)  # behind
    assert not balanced({}, 3)


# -- per-tier costs and ratios ------------------------------------------------------------------------


def test_the_clusters_helpers_are_counted_with_the_tier_they_serve() -> None:
    assert tier_of("pgbouncer") == "postgresql"
    assert tier_of("postgres-replica") == "postgresql"
    assert tier_of("zookeeper") == "clickhouse"
    assert tier_of("clickhouse-4") == "clickhouse"
    assert tier_of("kafka-3") == "kafka"


def test_capacity_tiers_are_summed_into_the_scale_out_tiers() -> None:
    grouped = group_tiers({"nginx": 1.0, "redirect": 2.0, "shorten": 0.5, "redis": 0.25, "other services": 0.25})
    assert list(grouped) == list(TIER_NAMES)
    assert grouped["others"] == 1.0
    assert grouped["redirect replicas"] == 2.0
    assert grouped["Kafka brokers"] == 0.0  # not measured: 0, not missing


def _step(tiers: dict[str, float], clicks: int, window: float) -> StepReport:
    result = AttackResult(
        requests=clicks,
        seconds=window,
        sent_seconds=window,
        statuses=Counter({302: clicks}),
        errors=Counter(),
        latencies_ms=[1.0],
        read_latencies_ms=[1.0],
        write_latencies_ms=[],
        served={"c": clicks},
    )
    return StepReport(
        kind="reads",
        plan=Plan(clicks // 60, 60),
        result=result,
        p50=1.0,
        p99=2.0,
        read_p99=2.0,
        write_p99=float("nan"),
        errors=0,
        drain_s=0.5,
        clicks=clicks,
        counted_pg=clicks,
        counted_ch=clicks,
        counted_after_s=1.0,
        tiers=tiers,
        generator=1.0,
        harness=0.1,
        machine=sum(tiers.values()) + 1.1,
        window=window,
    )


def _config(s: StackSettings, n: int, tiers: dict[str, float], idle: dict[str, float], name: str = "") -> Configuration:
    step = _step(tiers, 60_000, 100.0)
    return Configuration(name or str(n), host_plan(s, n), step, idle, 10.0, (1.0, 1.0, 1.0), (2.0, 1.0, 1.0))


def test_cost_per_click_gross_and_without_the_configurations_idle_burn(s: StackSettings) -> None:
    # 60,000 clicks over a 100 s window: 0.06 CPU s of a tier = 1 us per click.
    c = _config(
        s, 2, {"redirect": 12.0, "kafka": 6.0, "postgresql": 0.6, "shorten": 0.3}, {"redirect": 0.02, "kafka": 0.03}
    )
    gross, marginal = c.gross_us(), c.marginal_us()
    assert gross["redirect replicas"] == pytest.approx(200.0)
    assert gross["Kafka brokers"] == pytest.approx(100.0)
    assert gross["others"] == pytest.approx(5.0)
    assert marginal["redirect replicas"] == pytest.approx(200.0 - 0.02 * 100 / 0.06)  # 2 CPU s idle
    assert marginal["Kafka brokers"] == pytest.approx(50.0)
    assert marginal["PostgreSQL + PgBouncer"] == gross["PostgreSQL + PgBouncer"]


def test_ratios_to_one_host_and_their_trend() -> None:
    costs = {"1": {"a": 100.0, "b": 50.0, "c": 0.0}, "2": {"a": 105.0, "b": 80.0, "c": 1.0}, "3": {"a": 80.0}}
    r = ratios(costs)
    assert r["2"]["a"] == pytest.approx(1.05)
    assert r["2"]["b"] == pytest.approx(1.6)
    assert r["2"]["c"] is None  # nothing to compare with
    assert r["3"] == {"a": pytest.approx(0.8)}
    assert list(r) == ["2", "3"]
    assert [trend(x) for x in (1.05, 1.6, 0.8, None)] == ["flat", "grows", "falls", "-"]


def test_the_ratio_table_names_a_tier_whose_cost_grows(s: StackSettings) -> None:
    base = {"nginx": 3.0, "redirect": 12.0, "kafka": 6.0, "aggregator": 6.0}
    grown = {**base, "kafka": 9.0}  # Kafka 1.5x per click at 3 hosts
    table = ratio_table([_config(s, 1, base, {}), _config(s, 3, grown, {})])
    kafka = next(line for line in table.splitlines() if line.startswith("| Kafka brokers |"))
    assert kafka.split("|")[1:-1] == [" Kafka brokers ", " 1.50 ", " 1.50 ", " grows "]
    redirect = next(line for line in table.splitlines() if line.startswith("| redirect replicas |"))
    assert redirect.endswith("| flat |")


def test_a_host_count_measured_again_is_named_apart_and_compared_with_the_first() -> None:
    assert [label(n, [1, 2, 3, 1, 1][:i]) for i, n in enumerate([1, 2, 3, 1, 1])] == [
        "1",
        "2",
        "3",
        "1 (again)",
        "1 (#3)",
    ]


def test_the_repeat_of_one_host_gets_its_own_ratio_column_and_the_trend_is_at_the_most_hosts(
    s: StackSettings,
) -> None:
    base = {"nginx": 3.0, "kafka": 6.0}
    configs = [
        _config(s, 1, base, {}),
        _config(s, 3, {"nginx": 3.0, "kafka": 12.0}, {}),
        _config(s, 1, {"nginx": 3.3, "kafka": 6.0}, {}, name="1 (again)"),
    ]
    lines = ratio_table(configs).splitlines()
    assert lines[0].split("|")[2:6] == [
        " gross 3 / 1 ",
        " gross 1 (again) / 1 ",
        " marginal 3 / 1 ",
        " marginal 1 (again) / 1 ",
    ]
    nginx = next(line for line in lines if line.startswith("| nginx |"))
    assert nginx.split("|")[1:-1] == [" nginx ", " 1.00 ", " 1.10 ", " 1.00 ", " 1.10 ", " flat "]
    kafka = next(line for line in lines if line.startswith("| Kafka brokers |"))
    assert kafka.endswith("| grows |")


def test_the_section_has_every_table_and_the_machines_load(s: StackSettings) -> None:
    args = argparse.Namespace(
        label="results",
        step_seconds=60.0,
        codes=1000,
        probe_seconds=20.0,
        p99_ms=100.0,
        drain_seconds=5.0,
        max_busy=0.75,
        per_host=False,
    )
    base = {"nginx": 3.0, "redirect": 12.0, "kafka": 6.0, "aggregator": 6.0, "postgresql": 1.0, "clickhouse": 4.0}
    configs = [_config(s, 1, base, {"kafka": 0.1}), _config(s, 2, base, {"kafka": 0.1})]
    probe = _step(base, 30_000, 25.0)
    probe.reasons.append("machine 80% busy > 75%")
    section = render_section(
        args, 500, "probed", [probe], configs, {"uptime at start": "up 1 day, load average: 0.50"}, "abc1234", 600.0
    )
    for heading in ("Rate probe", "Configurations", "(gross)", "Idle burn", "(marginal", "Cost at N hosts"):
        assert f"### {heading}" in section or heading in section
    assert "FAIL: machine 80% busy > 75%" in section
    assert "- uptime at start: up 1 day, load average: 0.50" in section
    assert "| 2 | redirect-1, redirect-2, aggregator-1, aggregator-2 | 1,000 |" in section


def test_a_metrics_series_is_summed_over_its_label_sets_only() -> None:
    text = (
        'aggregator_clickhouse_insert_seconds_count{table="click_events"} 12.0\n'
        'aggregator_clickhouse_insert_seconds_count{table="rollups"} 3.0\n'
        "aggregator_clickhouse_insert_seconds_sum 9.5\n"
        "aggregator_clickhouse_insert_seconds_count_other 100.0\n"
    )
    assert metric_total(text, "aggregator_clickhouse_insert_seconds_count") == 15.0
    assert metric_total("aggregator_x 2.0\n", "aggregator_x") == 2.0


# -- flush modes: before and after in one run ------------------------------------------------------

SUPERVISOR_CONF = """[supervisord]
nodaemon=false

[program:aggregator-1]
command=/x/.venv/bin/python -m aggregator worker
environment=PYTHONUNBUFFERED="1",POSTGRES_DSN="postgresql://a:b@127.0.0.1:1/db",AGGREGATOR_WORKER_ID="1"

[program:aggregator-2]
command=/x/.venv/bin/python -m aggregator worker
environment=PYTHONUNBUFFERED="1",AGGREGATOR_WORKER_ID="2"

[program:redirect-1]
environment=PYTHONUNBUFFERED="1",REDIRECT_REPLICA_ID="1"
"""


def test_a_flush_mode_is_set_in_the_aggregators_environment_and_taken_out_again() -> None:
    workers = ["aggregator-1", "aggregator-2"]
    worker_mode = with_program_env(SUPERVISOR_CONF, workers, FLUSH_ENV, FLUSH_MODES["worker"].shared_by_group)
    lines = worker_mode.splitlines()
    assert lines[5] == (
        'environment=PYTHONUNBUFFERED="1",POSTGRES_DSN="postgresql://a:b@127.0.0.1:1/db",'
        'AGGREGATOR_WORKER_ID="1",AGGREGATOR_FLUSH_SHARED_BY_GROUP="false"'
    )
    assert (
        lines[9] == 'environment=PYTHONUNBUFFERED="1",AGGREGATOR_WORKER_ID="2",AGGREGATOR_FLUSH_SHARED_BY_GROUP="false"'
    )
    assert lines[12] == SUPERVISOR_CONF.splitlines()[12]  # the redirect replica is not touched
    group_mode = with_program_env(worker_mode, workers, FLUSH_ENV, FLUSH_MODES["group"].shared_by_group)
    assert group_mode.count(FLUSH_ENV) == 2 and 'AGGREGATOR_FLUSH_SHARED_BY_GROUP="true"' in group_mode
    assert as_rendered(group_mode, workers, ["redirect-1"]) == SUPERVISOR_CONF
    with pytest.raises(ValueError, match="aggregator-3"):
        with_program_env(SUPERVISOR_CONF, ["aggregator-3"], FLUSH_ENV, "false")


def test_each_host_count_runs_in_every_flush_mode_but_one_host_runs_once() -> None:
    assert configurations([1, 2, 3, 1], ["worker", "group"]) == [
        (1, "group"),
        (2, "worker"),
        (2, "group"),
        (3, "worker"),
        (3, "group"),
        (1, "group"),
    ]
    assert configurations([1, 3], ["group"]) == [(1, "group"), (3, "group")]
    assert configurations([1, 3], ["worker"]) == [(1, "worker"), (3, "worker")]


def test_the_per_worker_flush_is_named_and_compared_with_one_host(s: StackSettings) -> None:
    assert label(3, [], "worker") == "3 per-worker"
    assert label(3, [3], "worker") == "3 per-worker (again)"
    base = {"aggregator": 6.0, "clickhouse": 4.0}
    configs = [
        _config(s, 1, base, {}),
        _config(s, 3, {"aggregator": 12.0, "clickhouse": 8.0}, {}, name="3 per-worker"),
        _config(s, 3, {"aggregator": 6.3, "clickhouse": 4.0}, {}),
    ]
    configs[1].flush = "worker"
    lines = ratio_table(configs).splitlines()
    assert lines[0].split("|")[2:4] == [" gross 3 per-worker / 1 ", " gross 3 / 1 "]
    clickhouse = next(line for line in lines if line.startswith("| ClickHouse + ZooKeeper |"))
    # per-worker 2x, group 1x; the trend is the group mode's at 3 hosts
    assert clickhouse.split("|")[1:-1] == [" ClickHouse + ZooKeeper ", " 2.00 ", " 1.00 ", " 2.00 ", " 1.00 ", " flat "]


def test_the_records_mode_stretches_each_replicas_click_flush_by_the_live_replicas() -> None:
    workers, replicas = ["aggregator-1", "aggregator-2"], ["redirect-1"]
    three = mode_conf(SUPERVISOR_CONF, "records", 3, workers, replicas, 0.1)
    assert 'REDIRECT_REPLICA_ID="1",REDIRECT_CLICK_FLUSH_INTERVAL_SECONDS="0.3"' in three
    assert three.count('AGGREGATOR_FLUSH_SHARED_BY_GROUP="true"') == 2
    group = mode_conf(three, "group", 3, workers, replicas, 0.1)
    assert REPLICA_FLUSH_ENV not in group and group.count('AGGREGATOR_FLUSH_SHARED_BY_GROUP="true"') == 2
    assert mode_conf(three, None, 3, workers, replicas, 0.1) == SUPERVISOR_CONF
    assert as_rendered(three, workers, replicas) == SUPERVISOR_CONF
    assert configurations([1, 3], ["group", "records"]) == [(1, "group"), (3, "group"), (3, "records")]
    assert configurations([1, 3], ["records"]) == [(1, "group"), (3, "records")]
    assert label(3, [], "records") == "3 replicas x3"


def test_the_batched_mode_keeps_the_replicas_floor_the_others_take_it_off() -> None:
    workers, replicas = ["aggregator-1", "aggregator-2"], ["redirect-1"]
    group = mode_conf(SUPERVISOR_CONF, "group", 2, workers, replicas, 0.1)
    assert 'REDIRECT_REPLICA_ID="1",REDIRECT_CLICK_FLUSH_MIN_CLICKS="0"' in group
    batched = mode_conf(group, "batched", 2, workers, replicas, 0.1)
    assert REPLICA_FLOOR_ENV not in batched and batched.count('AGGREGATOR_FLUSH_SHARED_BY_GROUP="true"') == 2
    assert as_rendered(group, workers, replicas) == SUPERVISOR_CONF
    assert configurations([1, 2, 3], ["group", "batched"]) == [
        (1, "group"),
        (1, "batched"),
        (2, "group"),
        (2, "batched"),
        (3, "group"),
        (3, "batched"),
    ]
    assert configurations([1, 3], ["batched"]) == [(1, "batched"), (3, "batched")]
    assert label(3, [], "batched") == "3 batched"


def test_a_batched_configuration_is_compared_with_one_host_batched(s: StackSettings) -> None:
    configs = [
        _config(s, 1, {"kafka": 10.0}, {}),
        _config(s, 1, {"kafka": 5.0}, {}, name="1 batched"),
        _config(s, 3, {"kafka": 20.0}, {}),
        _config(s, 3, {"kafka": 5.5}, {}, name="3 batched"),
    ]
    configs[1].flush = configs[3].flush = "batched"
    lines = ratio_table(configs).splitlines()
    assert lines[0].split("|")[2:4] == [" gross 3 / 1 ", " gross 3 batched / 1 batched "]
    kafka = next(line for line in lines if line.startswith("| Kafka brokers |"))
    # 3 / 1 grows 2x, 3 batched / 1 batched 1.1x; the trend is the batched mode's
    assert kafka.split("|")[2:4] == [" 2.00 ", " 1.10 "]
    assert kafka.split("|")[-2] == " flat "


def test_a_per_host_rate_is_said_in_the_section(s: StackSettings) -> None:
    args = argparse.Namespace(label="per host", step_seconds=30.0, codes=1000, per_host=True)
    base = {"nginx": 3.0, "redirect": 12.0, "kafka": 6.0, "aggregator": 6.0, "postgresql": 1.0, "clickhouse": 4.0}
    configs = [_config(s, 1, base, {}), _config(s, 2, base, {})]
    section = render_section(args, 250, "given", [], configs, {}, "abc", 60.0)
    assert "250 redirects/s per host (N hosts: N x 250/s) for 30 s per configuration" in section
    args.per_host = False
    section = render_section(args, 250, "given", [], [_config(s, 1, base, {})], {}, "abc", 60.0)
    assert "250 redirects/s for 30 s per configuration" in section
